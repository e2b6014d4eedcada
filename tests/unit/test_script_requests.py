"""Bash and Python implementations, without hosts: which implementations the loader takes for scripts (and
which it refuses), and the request prepare makes of a script operation (orch's script playbook, the
script's own environment of inputs and context, its files)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.engine.operations import Evaluation, StepError, prepare
from orchestrator.executors import scripts
from orchestrator.model import Artifact, LoadError, Step
from orchestrator.tosca import load

DATA = Path(__file__).resolve().parents[1] / "integration" / "data" / "scripts"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "t.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        load(tmp_path / "t.yaml")
    return [str(p) for p in caught.value.problems]


def topology_with(tmp_path: Path, implementation: str, artifacts: str = "{}") -> str:
    return f"""
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            app:
              type: tosca.nodes.Root
              artifacts: {artifacts}
              interfaces:
                Standard:
                  create:
                    implementation: {implementation}
        """


# -- what the loader takes for a script ---------------------------------------------------------------------


def test_scripts_by_suffix_and_by_artifact_type_load(tmp_path):
    for name in ("install.sh", "setup.py", "install"):
        (tmp_path / name).write_text("true\n", encoding="utf-8")
    (tmp_path / "t.yaml").write_text(textwrap.dedent(topology_with(
        tmp_path, "{ primary: install.sh, dependencies: [ setup.py ] }",
        "{ installer: { type: tosca.artifacts.Implementation.Bash, file: install } }")), encoding="utf-8")
    app = load(tmp_path / "t.yaml").nodes["app"]
    assert app.operations["Standard.create"].implementation == str(tmp_path / "install.sh")
    assert scripts.script_kind(str(tmp_path / "install.sh"), app.artifacts.values()) == "bash"
    # an artifact typed Bash is a Bash script whatever its name
    assert scripts.script_kind(str(tmp_path / "install"), app.artifacts.values()) == "bash"
    assert scripts.script_kind(str(tmp_path / "setup.py"), ()) == "python"
    assert scripts.script_kind(str(tmp_path / "play.yaml"), app.artifacts.values()) is None

    (tmp_path / "t.yaml").write_text(textwrap.dedent(topology_with(
        tmp_path, "installer", "{ installer: { type: Bash, file: install } }")), encoding="utf-8")
    app = load(tmp_path / "t.yaml").nodes["app"]
    assert scripts.script_kind(app.operations["Standard.create"].implementation, app.artifacts.values()) == "bash"


def test_scripts_the_engine_could_not_tell_or_find_are_refused(tmp_path):
    (tmp_path / "install").write_text("true\n", encoding="utf-8")
    (tmp_path / "run.sh").write_text("true\n", encoding="utf-8")
    found = problems_of(tmp_path, topology_with(
        tmp_path, "{ primary: { file: install, type: tosca.artifacts.Implementation.Python } }"))
    assert any("is a Python script whose name does not end in .py" in p for p in found), found
    found = problems_of(tmp_path, topology_with(tmp_path, "{ primary: { file: run.sh, type: Python } }"))
    assert any("is of type tosca.artifacts.Implementation.Python but named like a Bash script" in p
               for p in found), found
    found = problems_of(tmp_path, topology_with(tmp_path, "missing.py"))
    assert any("script" in p and "missing.py' does not exist" in p for p in found), found
    found = problems_of(tmp_path, topology_with(tmp_path, "run.rb"))
    assert any("not an Ansible playbook" in p and "Bash (.sh) and Python (.py) scripts" in p for p in found), found


# -- the variables of the script playbook -------------------------------------------------------------------


def test_values_are_text_and_other_values_json():
    variables = scripts.script_variables("bash", "/s/run.sh", [], {
        "text": "it's $(x)\n", "count": 3, "flag": True, "nothing": None, "items": [1, "a"], "map": {"b": 1}},
        [])
    assert variables["ORCH_SCRIPT_ENV"] == {"text": "it's $(x)\n", "count": "3", "flag": "true", "nothing": "",
                                            "items": '[1,"a"]', "map": '{"b":1}'}
    assert variables["ORCH_SCRIPT"] == "/s/run.sh" and variables["ORCH_SCRIPT_KIND"] == "bash"
    assert variables["ORCH_SCRIPT_PYTHON"] == "python3" and variables["ORCH_SCRIPT_CHANGES"] is True


def test_artifacts_are_copied_or_given_as_written():
    variables = scripts.script_variables("python", "/s/run.py", ["/s/lib.py"], {}, [
        Artifact("data", "tosca.artifacts.File", "/s/data.txt"),
        Artifact("remote", "tosca.artifacts.File", "https://example.invalid/x.tgz"),
        Artifact("in_repo", "tosca.artifacts.File", "x/y.tgz", repository="store")], python="/opt/py/bin/python3",
        poll=True)
    assert variables["ORCH_SCRIPT_ARTIFACTS"] == [{"name": "data", "file": "/s/data.txt"}]
    assert variables["ORCH_SCRIPT_ENV"] == {"remote": "https://example.invalid/x.tgz", "in_repo": "x/y.tgz"}
    assert variables["ORCH_SCRIPT_DEPENDENCIES"] == ["/s/lib.py"]
    assert variables["ORCH_SCRIPT_PYTHON"] == "/opt/py/bin/python3" and variables["ORCH_SCRIPT_CHANGES"] is False


def test_names_a_script_cannot_see_and_url_dependencies_are_refused():
    # a name bash cannot show its script is refused, not silently dropped
    for name in ("my-input", "x;touch /tmp/p", "1st", ""):
        with pytest.raises(scripts.ScriptError, match="cannot be an environment variable of a script"):
            scripts.script_variables("bash", "/s/run.sh", [], {name: "v"}, [])
    with pytest.raises(scripts.ScriptError, match="cannot be an environment variable"):
        scripts.script_variables("bash", "/s/run.sh", [], {}, [Artifact("my-art", "tosca.artifacts.File", "/a")])
    with pytest.raises(scripts.ScriptError, match="is a URL"):
        scripts.script_variables("bash", "/s/run.sh", ["https://example.invalid/lib.sh"], {}, [])


# -- prepare ------------------------------------------------------------------------------------------------


def evaluation(tmp_path: Path) -> Evaluation:
    topology = load(DATA / "topology.yaml", {"out_dir": str(tmp_path), "greeting": "hi"})
    attributes = {("producer", "word"): "lantern"}
    outputs = {("producer", "Standard.create", "MADE"): "made from: hi"}
    return Evaluation(topology, "dep", topology.input_values, lambda n, a: attributes.get((n, a)),
                      lambda n, o, k: outputs.get((n, o, k)), deployment_dir=str(tmp_path / "dep"))


def test_prepare_makes_a_script_request_with_the_scripts_own_environment(tmp_path):
    ev = evaluation(tmp_path)
    producer = prepare(Step("producer.create", "producer", operation="Standard.create"), ev).request
    assert producer.playbook == scripts.SCRIPT_PLAYBOOK
    assert producer.variables["ORCH_SCRIPT"] == str(DATA / "scripts" / "produce.sh")
    assert producer.variables["ORCH_SCRIPT_DEPENDENCIES"] == [str(DATA / "scripts" / "lib.sh")]
    assert producer.variables["ORCH_SCRIPT_ENV"] == {
        "greeting": "hi", "count": "3", "options": '{"list":[1,true],"text":"a b"}',
        "report": f"{tmp_path}/produce.env", "NODE": "producer", "INSTANCE": "producer_0", "HOST": "server",
        "DEPLOYMENT_ID": "dep"}  # not orch's controller-side DEPLOYMENT_DIR, ORCH_INPUTS, ORCH_HOSTS
    assert producer.variables["ORCH_SCRIPT_ARTIFACTS"] == [{"name": "words", "file": str(DATA / "files" /
                                                                                      "words.txt")}]
    # nothing else: an input named like an Ansible variable cannot reach the playbook as one
    assert set(producer.variables) == {"ORCH_SCRIPT", "ORCH_SCRIPT_KIND", "ORCH_SCRIPT_PYTHON", "ORCH_SCRIPT_ENV",
                                       "ORCH_SCRIPT_DEPENDENCIES", "ORCH_SCRIPT_ARTIFACTS", "ORCH_SCRIPT_CHANGES"}

    consumer = prepare(Step("consumer.configure", "consumer", operation="Standard.configure"), ev).request
    assert consumer.variables["ORCH_SCRIPT_KIND"] == "python"
    assert consumer.variables["ORCH_SCRIPT_ENV"]["made"] == "made from: hi"
    assert consumer.variables["ORCH_SCRIPT_ENV"]["word"] == "lantern"

    link = prepare(Step("consumer.link", "consumer", operation="Configure.pre_configure_source", requirement=1,
                        side="source"), ev).request
    assert link.playbook == scripts.SCRIPT_PLAYBOOK
    env = link.variables["ORCH_SCRIPT_ENV"]
    assert {k: env[k] for k in ("SOURCE_NODE", "SOURCE_INSTANCE", "TARGET_NODE", "TARGET_INSTANCE")} == {
        "SOURCE_NODE": "consumer", "SOURCE_INSTANCE": "consumer_0", "TARGET_NODE": "producer",
        "TARGET_INSTANCE": "producer_0"}


def test_a_script_operation_that_cannot_run_fails_naming_node_and_operation(tmp_path):
    (tmp_path / "run.sh").write_text("true\n", encoding="utf-8")
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""
        tosca_definitions_version: tosca_simple_yaml_1_3
        topology_template:
          node_templates:
            app:
              type: tosca.nodes.Root
              interfaces:
                Standard:
                  create:
                    implementation: run.sh
                    inputs: { my-input: 1 }
        """), encoding="utf-8")
    topology = load(tmp_path / "t.yaml")
    ev = Evaluation(topology, "dep", {}, lambda n, a: None, lambda n, o, k: None)
    with pytest.raises(StepError, match=r"app Standard.create: 'my-input' cannot be an environment variable"):
        prepare(Step("app.create", "app", operation="Standard.create"), ev)
