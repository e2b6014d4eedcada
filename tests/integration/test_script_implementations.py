"""Bash and Python implementations through `orch deploy` and `orch run` on localhost, with real Ansible: values
in (inputs and context as environment variables, byte for byte, nothing run), outputs out (exported variables
as operation outputs and attributes read by a later node), failures with the end of the script's error
output, a job (Runnable) made of scripts, and scripts batched together with their own values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from orchestrator.executors import scripts
from orchestrator.executors.ansible import AnsibleExecutor
from orchestrator.executors.inventory import OperationRequest, Target
from orchestrator.model import Artifact
from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "scripts"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL)


def environment_file(path: Path) -> dict[str, str]:
    """What `env -0` wrote."""
    entries = [e.partition(b"=") for e in path.read_bytes().split(b"\0") if e]
    return {name.decode(): value.decode() for name, _, value in entries}


def outputs_of(home: Path, deployment: str) -> dict[str, dict]:
    store = Store(home)
    try:
        return {r.step_id: r.outputs for r in store.operation_runs(deployment) if r.status == "done"}
    finally:
        store.close()


def hostile(tmp_path: Path) -> str:
    return (f"it's \"$(touch {tmp_path}/marker-subst)\" `touch {tmp_path}/marker-tick`; touch {tmp_path}/m3\n"
            "second line\t{{ lookup('env', 'HOME') }} $HOME \\ 'end' ")


def test_bash_and_python_scripts_take_values_and_give_outputs(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    greeting = hostile(tmp_path)
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(yaml.safe_dump({"out_dir": str(out), "greeting": greeting}), encoding="utf-8")
    deployed = orch(home, "deploy", str(DATA / "topology.yaml"), "-n", "scripts", "-i", str(inputs))
    assert deployed.returncode == 0, deployed.stderr
    assert not list(tmp_path.glob("marker-*")) and not (tmp_path / "m3").exists(), "a value was run as code"

    # the Bash create: inputs and context as environment variables, text byte for byte, the rest as JSON
    seen = environment_file(out / "produce.env")
    assert seen["greeting"] == greeting
    assert seen["count"] == "3" and json.loads(seen["options"]) == {"list": [1, True], "text": "a b"}
    assert {k: seen[k] for k in ("NODE", "INSTANCE", "HOST", "DEPLOYMENT_ID")} == {
        "NODE": "producer", "INSTANCE": "producer_0", "HOST": "server", "DEPLOYMENT_ID": "scripts"}
    # its artifact is a file on the host beside it; orch's controller-side variables are not there
    assert seen["words"].endswith("/artifacts/words/words.txt") and Path(seen["PWD"]) == Path(seen["words"]).parents[2]
    assert not {"DEPLOYMENT_DIR", "ORCH_INPUTS", "ORCH_HOSTS", "ORCH_SCRIPT_ENV"} & set(seen)
    assert not [k for k in seen if k.startswith("ANSIBLE_")]
    assert not Path(seen["PWD"]).exists(), "the script's folder outlived the operation"

    # what it exported: an operation output and an attribute, read by the Python configure of another node
    outputs = json.loads(orch(home, "outputs", "scripts", "--json").stdout)
    assert outputs["made"] == "made from: " + greeting
    assert outputs["word"] == "lantern"
    assert outputs["seen"] == "LANTERN / made from: " + greeting
    consumed = json.loads((out / "consume.json").read_text(encoding="utf-8"))
    assert consumed["environ"]["made"] == "made from: " + greeting and consumed["environ"]["word"] == "lantern"
    assert consumed["name"] == "__main__" and consumed["argv"][0].endswith("/consume.py")
    status = json.loads(orch(home, "status", "scripts", "--json").stdout)
    assert status["nodes"]["producer"]["attributes"]["word"] == "lantern"
    assert status["status"] == "deployed" and status["nodes"]["consumer"]["state"] == "started"

    # the relationship operation's context
    link = environment_file(out / "link.env")
    assert {k: link[k] for k in ("SOURCE_NODE", "SOURCE_INSTANCE", "TARGET_NODE", "TARGET_INSTANCE")} == {
        "SOURCE_NODE": "consumer", "SOURCE_INSTANCE": "consumer_0", "TARGET_NODE": "producer",
        "TARGET_INSTANCE": "producer_0"}

    # only what a script exported or changed is an output (the sibling ran in the producer's batch)
    runs = outputs_of(home, "scripts")
    assert runs["producer.create"] == {"MADE": "made from: " + greeting, "word": "lantern"}
    assert runs["sibling.create"] == {"SIBLING_SAID": "sibling's own"}
    assert json.loads((out / "sibling.json").read_text(encoding="utf-8"))["greeting"] == "sibling's own"


def test_a_failing_script_fails_its_operation_with_the_end_of_its_error_output(tmp_path):
    home = tmp_path / "home"
    deployed = orch(home, "deploy", str(DATA / "failing.yaml"), "-n", "failing")
    assert deployed.returncode == 1, deployed.stderr
    failures = [line for line in deployed.stderr.splitlines() if line.startswith("failed: ")]
    bash = next(line for line in failures if line.startswith("failed: bash_fails Standard.create"))
    assert "fail.sh exited with code 7; stderr: " in bash
    assert "the last words of the error" in deployed.stderr
    assert "the first words of the error" not in deployed.stderr  # its tail, not all of it
    python = deployed.stderr[deployed.stderr.index("failed: python_raises Standard.create"):]
    assert "raise.py exited with code 1" in python
    assert "RuntimeError: the Python script gave up on purpose" in python
    assert "runpy" not in python  # the traceback is the script's own
    status = json.loads(orch(home, "status", "failing", "--json").stdout)
    assert status["status"] == "failed"


def test_a_job_made_of_scripts_is_submitted_watched_and_fails_with_its_error(tmp_path):
    home, jobs = tmp_path / "home", tmp_path / "jobs"
    deployed = orch(home, "deploy", str(DATA / "job.yaml"), "-n", "job", "--set", f"work_dir={jobs}")
    assert deployed.returncode == 0, deployed.stderr
    message = hostile(tmp_path)
    inputs = tmp_path / "run.yaml"
    inputs.write_text(yaml.safe_dump({"message": message}), encoding="utf-8")
    ran = orch(home, "run", "job", "-i", str(inputs))
    assert ran.returncode == 0, ran.stderr
    (job,) = jobs.iterdir()
    assert (job / "out").read_text(encoding="utf-8") == message
    assert not list(tmp_path.glob("marker-*"))
    execution_id = ran.stdout.strip().splitlines()[0]
    store = Store(home)
    try:
        steps = {r.step_id: r for r in store.operation_runs("job", execution_id)}
        job_events = [e.message for e in store.events("job", execution_id) if e.kind == "job"]
    finally:
        store.close()
    assert steps["run_job#0"].outputs["TOSCA_JOB_ID"] == str(job)
    assert steps["run_job#1"].outputs["TOSCA_JOB_STATUS"] == "COMPLETED"
    assert job_events[-1] == f"job {job} of job: COMPLETED"

    failed = orch(home, "run", "job", "--set", "message=m", "--set", "fail=true")
    assert failed.returncode == 1
    assert "failed: the job broke on purpose" in failed.stderr and "job /" in failed.stderr


def test_scripts_of_one_batch_keep_their_own_script_and_values(tmp_path):
    """One playbook run for three operations, each with its own script, interpreter's kind and values; text
    that YAML would read as another type (true, 3, null, no, 1.5, a date) stays text."""
    (tmp_path / "a.sh").write_text('export SAID="a:$value"\n', encoding="utf-8")
    (tmp_path / "b.py").write_text('import os\nos.environ["SAID"] = "b:" + os.environ["value"]\n', encoding="utf-8")
    (tmp_path / "c.sh").write_text('printf "%s" "$value" > "$out"; echo "c broke" >&2; exit 4\n',
                                   encoding="utf-8")
    looks_typed = ["true", "3", "null", "no", "1.5", "2001-01-01", "", "~"]
    requests = []
    for alias, script, kind in (("op_a", "a.sh", "bash"), ("op_b", "b.py", "python"), ("op_c", "c.sh", "bash")):
        values = {"value": f"{alias}'s", "out": str(tmp_path / f"{alias}.json"),
                  **{f"t{i}": v for i, v in enumerate(looks_typed)}}
        variables = scripts.script_variables(kind, str(tmp_path / script), [], values, [])
        requests.append(OperationRequest(alias, scripts.SCRIPT_PLAYBOOK, Target("orchestrator", "localhost"),
                                         variables, label=alias))
    typed = tmp_path / "typed.sh"
    typed.write_text('for i in 0 1 2 3 4 5 6 7; do v="t$i"; printf "%s\\0" "${!v}"; done > "$out"\n',
                     encoding="utf-8")
    requests.append(OperationRequest("op_t", scripts.SCRIPT_PLAYBOOK, Target("orchestrator", "localhost"),
                                     scripts.script_variables("bash", str(typed), [], {
                                         "out": str(tmp_path / "typed.bin"),
                                         **{f"t{i}": v for i, v in enumerate(looks_typed)}}, []), label="op_t"))
    with AnsibleExecutor(tmp_path / "home") as executor:
        results = executor.run_batch(requests)
    assert results["op_a"].ok and results["op_a"].facts == {"SAID": "a:op_a's"}
    assert results["op_b"].ok and results["op_b"].facts == {"SAID": "b:op_b's"}
    assert not results["op_c"].ok and "c.sh exited with code 4; stderr: c broke" in results["op_c"].message
    assert (tmp_path / "op_c.json").read_text(encoding="utf-8") == "op_c's"
    assert results["op_t"].ok, results["op_t"].message
    assert (tmp_path / "typed.bin").read_bytes().split(b"\0")[:-1] == [v.encode() for v in looks_typed]


def test_an_artifact_typed_bash_runs_as_a_script_whatever_its_name(tmp_path):
    (tmp_path / "install").write_text('export DONE="yes from $NODE"\n', encoding="utf-8")
    (tmp_path / "t.yaml").write_text("""\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    app:
      type: tosca.nodes.Root
      artifacts:
        installer: { type: tosca.artifacts.Implementation.Bash, file: install }
      interfaces:
        Standard:
          create: installer
  outputs:
    done: { value: { get_operation_output: [ app, Standard, create, DONE ] } }
""", encoding="utf-8")
    deployed = orch(tmp_path / "home", "deploy", str(tmp_path / "t.yaml"), "-n", "typed")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(orch(tmp_path / "home", "outputs", "typed", "--json").stdout) == {"done": "yes from app"}


def test_text_that_looks_typed_reaches_playbooks_as_text(tmp_path):
    """The inventory's marking keeps text text for playbooks too (Ansible reads an `!unsafe` scalar as if
    it were plain)."""
    (tmp_path / "probe.yaml").write_text("""\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ values | map('type_debug') | list | to_json }}"
""", encoding="utf-8")
    values = ["true", "3", "null", "no", "1.5", "{{ 1 }}"]
    request = OperationRequest("op_p", str(tmp_path / "probe.yaml"), Target("orchestrator", "localhost"),
                               {"out": str(tmp_path / "types.json"), "values": values})
    with AnsibleExecutor(tmp_path / "home") as executor:
        assert executor.run_batch([request])["op_p"].ok
    assert json.loads((tmp_path / "types.json").read_text(encoding="utf-8")) == ["str"] * len(values)


def test_a_script_gets_the_dependencies_and_artifacts_the_model_gives_it(tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "sub" / "tool.sh").write_text("echo tool\n", encoding="utf-8")
    (lib / "sub" / "tool.sh").chmod(0o755)
    (tmp_path / "notes.txt").write_text("notes\n", encoding="utf-8")
    (tmp_path / "run.sh").write_text(
        'export TOOL="$(./lib/sub/tool.sh)" NOTES="$(cat notes.txt)" DATA="$(cat "$data")"\n', encoding="utf-8")
    (tmp_path / "data.txt").write_text("data\n", encoding="utf-8")
    variables = scripts.script_variables("bash", str(tmp_path / "run.sh"), [str(lib), str(tmp_path / "notes.txt")],
                                         {}, [Artifact("data", "tosca.artifacts.File", str(tmp_path / "data.txt"))])
    request = OperationRequest("op_d", scripts.SCRIPT_PLAYBOOK, Target("orchestrator", "localhost"), variables)
    with AnsibleExecutor(tmp_path / "home") as executor:
        result = executor.run_batch([request])["op_d"]
    assert result.ok, result.message
    assert result.facts == {"TOOL": "tool", "NOTES": "notes", "DATA": "data"}
