"""Loading service templates through `orchestrator.tosca.load`: for each gap the loader closes around
tosca-parser, one template that loads and one whose problem is asserted (file, place, message).

Fixtures live in tests/unit/data/; CSARs and byte-level oddities are built in tmp_path.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.model import LoadError, Problem, Topology
from orchestrator.tosca import load, validate

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


# -- helpers -----------------------------------------------------------------------------------------


def problems_of(path, inputs=None, **kwargs) -> list[Problem]:
    with pytest.raises(LoadError) as caught:
        load(path, inputs, **kwargs)
    problems = caught.value.problems
    assert problems, "LoadError without problems"
    assert all(isinstance(p, Problem) for p in problems)
    return problems


def find(problems: list[Problem], place: str | None = None, message: str = "") -> Problem:
    """The problem at `place` (exact; None = any place) whose message contains `message`."""
    for problem in problems:
        if (place is None or problem.place == place) and message in problem.message:
            return problem
    raise AssertionError(f"no problem at {place!r} containing {message!r} in:\n"
                         + "\n".join(str(p) for p in problems))


def same_file(a: str, b: str | Path) -> bool:
    return Path(a.split("!")[0]).resolve() == Path(b).resolve()


# A hang detector, not a speed limit: generous, so that only a load that never returns trips it.
HANG_BOUND = 120


class _Hung(BaseException):
    """Raised by SIGALRM inside a runaway load; a BaseException so that no `except Exception` swallows it."""


@contextlib.contextmanager
def returns_within(seconds: int, what: str) -> Iterator[None]:
    """Fail the test, with a message, when the block has not returned after `seconds`."""

    def alarm(signum, frame):
        raise _Hung()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Hung:
        pytest.fail(f"{what} did not finish in {seconds} s", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test here may fetch a URL, whatever the loader decides."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to fetch a URL: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- topology_template.workflows ---------------------------------------------------------------------


def test_workflows_are_parsed_apart_from_tosca_parser():
    topology = load(DATA / "workflows_good.yaml")
    assert isinstance(topology, Topology)
    assert set(topology.workflows) == {"refresh"}
    workflow = topology.workflows["refresh"]
    assert workflow.description == "Reconfigure the app, then restart it."
    assert set(workflow.steps) == {"mark", "reconfigure", "restart", "report"}

    assert set(workflow.inputs) == {"message", "times"}
    assert workflow.inputs["message"].default == "again" and workflow.inputs["message"].has_default
    assert workflow.inputs["times"].type == "integer" and not workflow.inputs["times"].required

    mark = workflow.steps["mark"]
    assert mark.target == "app"
    assert [(a.kind, a.value) for a in mark.activities] == [("set_state", "configuring")]
    assert mark.on_success == ("reconfigure",)

    reconfigure = workflow.steps["reconfigure"]
    # the full interface name is shortened to the key the node's operations use
    assert [(a.kind, a.value) for a in reconfigure.activities] == [
        ("call_operation", "Standard.configure"), ("set_state", "configured")]
    assert reconfigure.on_success == ("restart",)
    assert reconfigure.on_failure == ("report",)

    restart = workflow.steps["restart"]  # the long form {operation: ..., inputs: ...} and a delegate
    assert [(a.kind, a.value) for a in restart.activities] == [
        ("call_operation", "Standard.create"), ("delegate", "install")]
    assert workflow.steps["report"].target == "server"


def test_workflow_with_unknown_operation_is_a_problem():
    path = DATA / "workflows_bad.yaml"
    problems = problems_of(path)
    problem = find(problems, "topology_template.workflows.refresh.steps.second.activities[0]",
                   "unknown operation 'Standard.reboot' on node app")
    assert same_file(problem.file, path)
    assert len(problems) == 1  # nothing else is wrong with this file


# -- operations along derived_from, refined by templates, paths relative to the declaring file ---------


def test_type_operations_are_merged_into_templates():
    topology = load(DATA / "ops" / "ops_good.yaml")
    types_dir = (DATA / "ops" / "types" / "playbooks").resolve()
    db = topology.nodes["db"]
    assert db.types[:2] == ("ops.nodes.Database", "ops.nodes.Base")
    assert set(db.operations) == {"Standard.create", "Standard.configure", "Standard.start",
                                  "Standard.stop", "Standard.delete"}

    create = db.operations["Standard.create"]  # declared on the parent type, refined twice
    assert create.implementation == str(types_dir / "base_create.yaml")
    assert dict(create.inputs) == {"dir": {"get_property": ["SELF", "dir"]},  # from ops.nodes.Base
                                   "owner": "postgres",  # ops.nodes.Database refines Base
                                   "mode": "0700",  # the template refines the type
                                   "extra": True}  # the template adds

    assert db.operations["Standard.delete"].implementation == str(types_dir / "base_delete.yaml")
    configure = db.operations["Standard.configure"]
    assert configure.implementation == str(types_dir / "db_configure.yaml")
    # an input *definition* on a type gives its default; one without a default gives nothing
    assert dict(configure.inputs) == {"port": 5432}
    start = db.operations["Standard.start"]
    assert start.implementation == str(types_dir / "db_start.yaml")
    assert start.dependencies == (str(types_dir / "base_create.yaml"),)

    # the template's own operation resolves relative to the template file (data/ops/)
    assert db.operations["Standard.stop"].implementation == str((DATA / "playbooks" / "noop.yaml").resolve())

    plain = topology.nodes["plain"]  # the parent type alone: its own inputs, untouched by db's refinements
    assert dict(plain.operations["Standard.create"].inputs) == {
        "dir": {"get_property": ["SELF", "dir"]}, "mode": "0755", "owner": "root"}
    assert set(plain.operations) == {"Standard.create", "Standard.delete"}
    assert all(Path(op.implementation).is_file()
               for node in topology.nodes.values() for op in node.operations.values())


def test_type_playbook_path_resolves_relative_to_the_type_file():
    path = DATA / "ops" / "ops_bad.yaml"
    problems = problems_of(path)
    expected = (DATA / "ops" / "types" / "types" / "playbooks" / "db_start.yaml").resolve()
    problem = find(problems, "node_templates.db.interfaces.Standard.start",
                   f"playbook '{expected}' does not exist")
    assert same_file(problem.file, path)
    # relative to the template the path would exist: the loader must not have looked there
    assert (DATA / "ops" / "types" / "playbooks" / "db_start.yaml").is_file()


RETRYING = """\
    tosca_definitions_version: tosca_simple_yaml_1_3
    node_types:
      t.nodes.Flaky:
        derived_from: tosca.nodes.Root
        interfaces:
          Standard:
            type: tosca.interfaces.node.lifecycle.Standard
            create: { implementation: noop.yaml, retries: 5 }
            start: noop.yaml
    relationship_types:
      t.relationships.Wired:
        derived_from: tosca.relationships.ConnectsTo
    topology_template:
      relationship_templates:
        wire:
          type: t.relationships.Wired
          interfaces:
            Configure:
              add_target: { implementation: noop.yaml, retries: 4, retry_delay: 0 }
      node_templates:
        peer: { type: t.nodes.Flaky }
        flaky:
          type: t.nodes.Flaky
          interfaces:
            Standard:
              create: { implementation: noop.yaml, retries: 1, retry_delay: 0.5, inputs: { retries: seven } }
              configure: { implementation: noop.yaml, retry_delay: 2 }
              start: { retries: 0 }
          requirements:
            - dependency:
                node: peer
                relationship:
                  type: tosca.relationships.ConnectsTo
                  interfaces:
                    Configure:
                      pre_configure_source: { implementation: noop.yaml, retries: 3, retry_delay: 1 }
            - dependency: { node: peer, relationship: wire }
    """


def test_retries_on_operations_of_templates(tmp_path):
    (tmp_path / "noop.yaml").write_text("- hosts: all\n  tasks: []\n")
    flaky = load(write(tmp_path, RETRYING)).nodes["flaky"]
    timing = {key: (op.retries, op.retry_delay) for key, op in flaky.operations.items()}
    assert timing == {"Standard.create": (1, 0.5), "Standard.configure": (None, 2.0), "Standard.start": (0, None)}
    assert dict(flaky.operations["Standard.create"].inputs) == {"retries": "seven"}  # an input of that name stays
    connects, wired = flaky.requirements
    pre = connects.operations["Configure.pre_configure_source"]
    assert (pre.retries, pre.retry_delay) == (3, 1.0)
    add = wired.operations["Configure.add_target"]
    assert (add.retries, add.retry_delay) == (4, 0.0)


@pytest.mark.parametrize(("keys", "place", "message"), [
    ("retries: two", "retries", "must be a whole number of attempts"),
    ("retries: -1", "retries", "must be a whole number of attempts"),
    ("retries: 1.5", "retries", "must be a whole number of attempts"),
    ("retry_delay: soon", "retry_delay", "must be a number of seconds"),
    ("retry_delay: -2", "retry_delay", "must be a number of seconds"),
])
def test_retries_of_the_wrong_kind(tmp_path, keys, place, message):
    (tmp_path / "noop.yaml").write_text("- hosts: all\n  tasks: []\n")
    path = write(tmp_path, RETRYING.replace("retries: 1, retry_delay: 0.5", keys))
    find(problems_of(path), f"node_templates.flaky.interfaces.Standard.create.{place}", message)


def test_other_unknown_keys_on_a_template_operation_are_still_refused(tmp_path):
    (tmp_path / "noop.yaml").write_text("- hosts: all\n  tasks: []\n")
    path = write(tmp_path, RETRYING.replace("retries: 1, retry_delay: 0.5", "retires: 1"))
    find(problems_of(path), "node_templates.flaky.interfaces.Standard.create", "unknown key retires in an operation")


# -- the Runnable interface --------------------------------------------------------------------------


def test_runnable_interface_on_a_type():
    topology = load(DATA / "runnable_good.yaml")
    playbooks = (DATA / "playbooks").resolve()
    job = topology.nodes["job"]
    assert set(job.operations) == {"Runnable.submit", "Runnable.run", "Runnable.cancel"}
    submit = job.operations["Runnable.submit"]
    assert (submit.interface, submit.name) == ("Runnable", "submit")
    assert submit.implementation == str(playbooks / "submit.yaml")
    assert dict(submit.inputs) == {"script": {"get_property": ["SELF", "script"]}, "queue": "batch"}
    assert job.operations["Runnable.run"].implementation == str(playbooks / "run.yaml")

    other = topology.nodes["other_job"]
    assert other.operations["Runnable.cancel"].implementation == str(playbooks / "noop.yaml")
    assert dict(other.operations["Runnable.submit"].inputs) == {
        "script": {"get_property": ["SELF", "script"]}}

    # the interface type written short on the type
    assert set(topology.nodes["short_job"].operations) == {"Runnable.submit"}


def test_runnable_has_no_pause():
    path = DATA / "runnable_bad.yaml"
    problem = find(problems_of(path), "node_templates.job.interfaces.Runnable.pause",
                   "interface 'Runnable' has no operation 'pause'")
    assert same_file(problem.file, path)


def test_runnable_short_interface_type_with_template_assignment():
    topology = load(DATA / "runnable_short_type.yaml")
    assert set(topology.nodes["job"].operations) == {"Runnable.submit", "Runnable.run"}


# -- inputs: required, constraints, coercion -----------------------------------------------------------


def test_inputs_coerced_and_checked():
    topology = load(DATA / "inputs_good.yaml", {"nodes": "4", "ratio": "0.25", "exclusive": "yes"})
    values = topology.input_values
    assert values["nodes"] == 4 and isinstance(values["nodes"], int)  # --set gives strings
    assert values["ratio"] == 0.25
    assert values["exclusive"] is True
    assert values["partition"] == "normal" and values["account"] == "proj42"  # defaults
    assert "mode" not in values  # optional, no default, not given
    assert topology.inputs["nodes"].constraints == ({"in_range": [1, 64]},)


def test_required_input_without_value():
    path = DATA / "inputs_bad.yaml"
    problems = problems_of(path)
    problem = find(problems, "topology_template.inputs.site", "required input has no value")
    assert "--set site=VALUE" in problem.message
    assert same_file(problem.file, path)
    assert [p.place for p in problems] == ["topology_template.inputs.site"]
    assert load(path, {"site": "node1"}).input_values == {"site": "node1", "port": 22}


@pytest.mark.parametrize(("given", "place", "message"), [
    ({"nodes": 0}, "nodes", "violates constraint in_range"),
    ({"nodes": "65"}, "nodes", "violates constraint in_range"),
    ({"nodes": "four"}, "nodes", "expected a integer"),
    ({"nodes": 2, "partition": "gpu"}, "partition", "violates constraint valid_values"),
    ({"nodes": 2, "account": "ab"}, "account", "violates constraint min_length"),
    ({"nodes": 2, "account": "abcdefghijklm"}, "account", "violates constraint max_length"),
    ({"nodes": 2, "account": "Proj42"}, "account", "violates constraint pattern"),
    ({"nodes": 2, "ratio": "0"}, "ratio", "violates constraint greater_than"),
    ({"nodes": 2, "ratio": 1.5}, "ratio", "violates constraint less_or_equal"),
    ({"nodes": 2, "ratio": "half"}, "ratio", "expected a float"),
    ({"nodes": 2, "exclusive": "perhaps"}, "exclusive", "expected a boolean"),
    ({"nodes": 2, "code": "abc"}, "code", "violates constraint length"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_input_constraints(given, place, message):
    path = DATA / "inputs_good.yaml"
    problems = problems_of(path, given)
    problem = find(problems, f"topology_template.inputs.{place}", message)
    assert same_file(problem.file, path)
    assert len(problems) == 1


SECRET = "Hunter2-not-for-stderr"


@pytest.mark.parametrize(("given", "place", "message"), [
    ({"nodes": 2, "account": SECRET}, "account", "input 'account' violates constraint max_length: 12"),
    ({"nodes": 2, "account": SECRET}, "account", "input 'account' violates constraint pattern: '[a-z]+[0-9]*'"),
    ({"nodes": 2, "partition": SECRET}, "partition",
     "input 'partition' violates constraint valid_values: ['normal', 'debug', 'long']"),
    ({"nodes": 2, "code": SECRET}, "code", "input 'code' violates constraint length: 4"),
    ({"nodes": SECRET}, "nodes", "expected a integer, got text that is not a valid integer"),
    ({"nodes": 2, "ratio": SECRET}, "ratio", "expected a float"),
    ({"nodes": 2, "exclusive": SECRET}, "exclusive", "expected a boolean"),
    ({"nodes": 2, "ratio": [SECRET]}, "ratio", "expected a float, got a list"),
], ids=["max_length", "pattern", "valid_values", "length", "integer", "float", "boolean", "list"])
def test_an_input_problem_names_the_input_and_the_constraint_but_never_the_value(given, place, message):
    """An input may be a password: its value must not reach the terminal (the constraint's bound, which
    the template wrote, may)."""
    problems = problems_of(DATA / "inputs_good.yaml", given)
    find(problems, f"topology_template.inputs.{place}", message)
    assert not [p for p in problems if SECRET in str(p)], problems


@pytest.mark.parametrize("name", [
    pytest.param("nodes"),
    pytest.param("memory"),
    pytest.param("walltime"),
    pytest.param("release"),
])
def test_input_constraints_with_tosca_semantics(name):
    problems = validate(DATA / "inputs_units.yaml")
    assert [p for p in problems if p.place == f"topology_template.inputs.{name}"] == []


def test_map_input_with_a_number_key():
    # a mapping like any other (it once crashed load: coerce called .startswith on the key)
    assert load(DATA / "input_map_int_key.yaml").input_values == {"limits": {1: "unlimited"}}


# -- requirement cycles -----------------------------------------------------------------------------


def test_requirement_diamond_is_not_a_cycle():
    topology = load(DATA / "cycle_good.yaml")
    assert [r.target for r in topology.nodes["top"].requirements] == ["left", "right"]


def test_requirement_cycle():
    path = DATA / "cycle_bad.yaml"
    problems = problems_of(path)
    problem = find(problems, None, "requirement cycle")
    assert problem.place.startswith("node_templates.") and problem.place.endswith(".requirements")
    for name in ("alpha", "beta", "gamma"):
        assert name in problem.message
    assert "bystander" not in problem.message
    assert same_file(problem.file, path)


# -- imports ------------------------------------------------------------------------------------------


def test_local_import_relative_to_the_template():
    topology = load(DATA / "imports" / "local.yaml")
    assert topology.nodes["db"].is_a("ops.nodes.Base")


def test_remote_imports_refused_by_default():
    path = DATA / "imports" / "remote.yaml"
    problems = problems_of(path)  # no_network makes any fetch fail the test
    for i, url in enumerate(["https://types.example.invalid/orch/extra-types.yaml",
                             "http://types.example.invalid/orch/more-types.yaml",
                             "https://types.example.invalid/orch/named-types.yaml"]):
        problem = find(problems, f"imports[{i}]", f"remote import '{url}' refused")
        assert "--allow-remote-imports" in problem.message
        assert same_file(problem.file, path)


def test_remote_import_inside_an_imported_file_refused():
    problems = problems_of(DATA / "imports" / "chained.yaml")
    problem = find(problems, "imports[0]", "remote import 'https://types.example.invalid/orch/deep-types.yaml'")
    assert same_file(problem.file, DATA / "imports" / "chained-types.yaml")  # the file that has the import


# -- CSAR ---------------------------------------------------------------------------------------------


def build_csar(path: Path, source: Path = DATA / "csar_src") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(source.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(source).as_posix())
    return path


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path, monkeypatch):
    """tempfile.gettempdir() is a folder of this test's own, so that other processes using /tmp at the
    same time cannot make the before/after comparisons of orch-csar-* folders flaky."""
    folder = tmp_path / "tempdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def orch_temp_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "orch-csar-*")))


def test_csar_loads_and_leaves_no_temp_dir(tmp_path):
    archive = build_csar(tmp_path / "app.csar")
    before = orch_temp_dirs()
    assert before == set()
    seen = []
    real_mkdtemp = tempfile.mkdtemp

    def spy(*args, **kwargs):
        seen.append(real_mkdtemp(*args, **kwargs))
        return seen[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "mkdtemp", spy)
        topology = load(archive)
    assert len(seen) == 1 and Path(seen[0]).name.startswith("orch-csar-")  # it did unpack there...
    assert orch_temp_dirs() == before  # ...and removed it
    assert topology.path == str(archive)
    assert topology.template_file.endswith(os.path.join("definitions", "main.yaml"))
    assert topology.nodes["app"].is_a("csar.nodes.App")
    create = topology.nodes["app"].operations["Standard.create"]
    assert create.implementation.endswith(os.path.join("playbooks", "create.yaml"))
    assert not Path(topology.template_file).exists()  # the temporary copy is gone


def test_csar_unpacked_for_keeps(tmp_path):
    archive = build_csar(tmp_path / "app.zip")
    keep = tmp_path / "deployment" / "csar"
    topology = load(archive, unpack_dir=keep)
    create = topology.nodes["app"].operations["Standard.create"]
    assert Path(create.implementation) == (keep / "playbooks" / "create.yaml").resolve()
    assert Path(create.implementation).is_file()


def test_csar_with_problems_leaves_no_temp_dir(tmp_path):
    source = tmp_path / "src"
    (source / "TOSCA-Metadata").mkdir(parents=True)
    (source / "TOSCA-Metadata" / "TOSCA.meta").write_text("Entry-Definitions: main.yaml\n")
    (source / "main.yaml").write_text("tosca_definitions_version: tosca_simple_yaml_1_3\n"
                                      "topology_template:\n  node_templates:\n    a: {type: No.Such}\n")
    archive = build_csar(tmp_path / "broken.csar", source)
    before = orch_temp_dirs()
    problem = find(problems_of(archive), "node_templates.a.type", "unknown node type 'No.Such'")
    assert problem.file == f"{archive}!main.yaml"
    assert orch_temp_dirs() == before


def test_csar_zip_slip_refused(tmp_path):
    archive = tmp_path / "evil.csar"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("main.yaml", (DATA / "cycle_good.yaml").read_text())
        z.writestr("../evil", "owned")
    before = orch_temp_dirs()
    problem = find(problems_of(archive), "../evil", "zip slip")
    assert problem.file == str(archive)
    assert orch_temp_dirs() == before


def test_csar_symlink_refused(tmp_path):
    archive = tmp_path / "link.csar"
    link = zipfile.ZipInfo("types.yaml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("main.yaml", (DATA / "cycle_good.yaml").read_text())
        z.writestr(link, "/etc/passwd")
    problem = find(problems_of(archive), "types.yaml", "symbolic links are not allowed")
    assert problem.file == str(archive)


def test_csar_without_entry(tmp_path):
    archive = tmp_path / "noentry.csar"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.0\n")
        z.writestr("main.yaml", (DATA / "cycle_good.yaml").read_text())
    find(problems_of(archive), "TOSCA-Metadata/TOSCA.meta", "has no Entry-Definitions")


def corrupt(archive: Path, *, flag_bits: int = 0, method: int | None = None,
            flip: bytes | None = None) -> None:
    """Patch a stored zip in place: set general-purpose flag bits, change the compression method in both
    headers, or change one byte of a member's data (its CRC no longer matches)."""
    data = bytearray(archive.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    data[local + 6] |= flag_bits
    data[central + 8] |= flag_bits
    if method is not None:
        data[local + 8:local + 10] = method.to_bytes(2, "little")
        data[central + 10:central + 12] = method.to_bytes(2, "little")
    if flip is not None:
        at = data.index(flip)
        data[at] ^= 0x20
    archive.write_bytes(bytes(data))


def stored_csar(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("main.yaml", (DATA / "cycle_good.yaml").read_text())
    return path


def test_csar_with_corrupt_member(tmp_path):
    archive = stored_csar(tmp_path / "corrupt.csar")
    corrupt(archive, flip=b"tosca_definitions_version")
    before = orch_temp_dirs()
    problem = find(problems_of(archive), "", "damaged CSAR archive")
    assert "CRC" in problem.message and problem.file == str(archive)
    assert orch_temp_dirs() == before


@pytest.mark.parametrize("damage", [
    pytest.param({"flag_bits": 0x1}, id="encrypted"),
    pytest.param({"method": 97}, id="unsupported-compression"),
])
def test_csar_member_that_cannot_be_extracted(tmp_path, damage):
    archive = stored_csar(tmp_path / "odd.csar")
    corrupt(archive, **damage)
    before = orch_temp_dirs()
    failure = None
    try:
        problems_of(archive)
    except Exception as exc:  # noqa: BLE001
        failure = f"load raised {type(exc).__name__}: {exc}"
    assert orch_temp_dirs() == before
    if failure:
        pytest.fail(failure, pytrace=False)


# -- tosca-parser errors become problems, silently -----------------------------------------------------


def test_tosca_parser_accepts_declared_properties(capfd):
    topology = load(DATA / "parser_good.yaml")
    assert topology.nodes["service"].properties["port"] == 8080
    assert topology.nodes["server"].capabilities["host"] == {"num_cpus": 2}
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_tosca_parser_error_is_a_problem_and_prints_nothing(capfd):
    path = DATA / "parser_bad.yaml"
    problems = problems_of(path)
    problem = find(problems, "node_templates.service", 'unknown field "colour"')
    assert same_file(problem.file, path)
    assert not problem.message.startswith(("UnknownFieldError", "ValidationError"))
    captured = capfd.readouterr()
    assert captured.err == "", captured.err
    assert captured.out == "", captured.out
    # and again: tosca-parser's collector is reset between loads
    assert problems_of(path) == problems
    assert capfd.readouterr().err == ""


# -- everything else the loader finds ---------------------------------------------------------------


def test_misc_baseline_loads():
    topology = load(DATA / "misc" / "good.yaml")
    assert set(topology.nodes) == {"server", "web"}
    assert set(topology.outputs) == {"address"}


@pytest.mark.parametrize(("name", "place", "message"), [
    ("bad_malformed", "line 6", "malformed YAML"),
    ("bad_no_version", "tosca_definitions_version", "is missing"),
    ("bad_version", "tosca_definitions_version", "'tosca_simple_yaml_2_0' is not supported"),
    ("bad_unknown_type", "node_templates.web.type", "unknown node type 'tosca.nodes.WebSrever'"),
    ("bad_unknown_interface", "node_templates.web.interfaces.Lifecycle",
     "interface 'Lifecycle' is not declared"),
    ("bad_unknown_operation", "node_templates.web.interfaces.Standard.install",
     "interface 'Standard' has no operation 'install'"),
    ("bad_missing_playbook", "node_templates.web.interfaces.Standard.create",
     "no_such_playbook.yaml' does not exist"),
    ("bad_unknown_requirement", "node_templates.web.requirements[0]",
     "requirement 'host' targets unknown node 'servr'"),
    ("bad_get_input", "node_templates.web.interfaces.Standard.create.inputs.label.concat[0]",
     "get_input refers to undeclared input 'nmae'"),
    ("bad_token", "node_templates.web.interfaces.Standard.create.inputs.label.concat[2]",
     "token takes [string, delimiters, index]"),
    ("bad_get_property", "node_templates.web.interfaces.Standard.create.inputs.address",
     "get_property refers to unknown node 'nowhere'"),
    ("bad_alias_bomb", "", "alias bomb"),
])
def test_misc_problem(name, place, message):
    path = DATA / "misc" / f"{name}.yaml"
    with returns_within(HANG_BOUND, f"load of {name}.yaml"):
        problems = problems_of(path)
    if place.startswith("line "):
        problem = find(problems, None, message)
        assert problem.place.startswith(place + ","), problem.place
    else:
        problem = find(problems, place, message)
    assert same_file(problem.file, path)


ALIAS_BOMB_CHILD = """\
import json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from orchestrator.tosca import validate
problems = validate(sys.argv[1])
print(json.dumps([[p.file, p.place, p.message] for p in problems]))
"""


def test_alias_bomb_is_refused_without_expanding_it():
    """validate() refuses the billion laughs in a child process whose address space is capped at 2 GiB:
    expanding 9^9 strings cannot fit, so a loader that expands it dies (MemoryError) instead of
    passing slowly. How fast it refuses is a benchmark (benchmarks/alias_bomb.py), not a test."""
    path = DATA / "misc" / "bad_alias_bomb.yaml"
    limit = 2 * 1024 ** 3
    try:
        child = subprocess.run([sys.executable, "-c", ALIAS_BOMB_CHILD, str(path), str(limit)],
                               capture_output=True, text=True, timeout=HANG_BOUND, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"validate of the alias bomb did not finish in {HANG_BOUND} s", pytrace=False)
    assert child.returncode == 0, child.stderr[-3000:]
    problems = json.loads(child.stdout)
    assert len(problems) == 1, problems
    file, place, message = problems[0]
    assert same_file(file, path) and place == ""
    assert "alias bomb" in message, message


def test_recursive_alias(tmp_path):
    path = write(tmp_path, """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        metadata:
          loop: &loop [ *loop ]
        topology_template:
          node_templates:
            a: { type: tosca.nodes.Root }
        """)
    find(problems_of(path), "", "alias")


def test_duplicate_node_template_name():
    find(problems_of(DATA / "duplicate_node.yaml"), None, "worker")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes((DATA / "cycle_good.yaml").read_bytes().replace(b"shared targets", b"caf\xe9 targets"))
    problem = find(problems_of(path), None, "is not valid UTF-8 text")
    assert problem.place.startswith("byte ")
    assert int(problem.place.split()[1]) == path.read_bytes().index(b"\xe9")
    assert problem.file == str(path)


def test_oversized_file(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.write(b"tosca_definitions_version: tosca_simple_yaml_1_3\n")
        f.truncate(11 * 1024 * 1024)
    find(problems_of(path), "", "the limit is 10 MB")


V13 = "tosca_definitions_version: tosca_simple_yaml_1_3\n"
NODES = V13 + "topology_template:\n  node_templates:\n"


@pytest.mark.parametrize(("text", "place", "message"), [
    ("- a\n- b\n", "", "must be a YAML mapping"),
    ("", "", "must be a YAML mapping"),
    (V13, "topology_template", "is missing or not a mapping"),
    (V13 + "topology_template: {}\n", "topology_template.node_templates", "needs at least one node template"),
    (V13 + "topology_template: {node_template: {a: {type: tosca.nodes.Root}}}\n",
     "topology_template.node_template", "unknown section"),
    (V13 + "topology_template:\n\tnode_templates: {}\n", None, "malformed YAML"),
    (V13 + "topology_template: !!python/object/apply:os.system [echo pwned]\n", None, "malformed YAML"),
    (NODES + "    server: {type: tosca.nodes.Compute}\n    app:\n      type: tosca.nodes.SoftwareComponent\n"
     + "      requirements: [{host: {node: server, relationship: LivesOn}}]\n",
     "node_templates.app.requirements[0]", "unknown relationship type 'LivesOn'"),
    (NODES + "    server: {properties: {}}\n", "node_templates.server", "needs a 'type'"),
    (NODES + "    server: {type: tosca.nodes.Compute}\n  outputs:\n    address: {description: no value}\n",
     "topology_template.outputs.address", "needs a 'value'"),
], ids=["list", "empty", "no-topology", "no-nodes", "unknown-section", "tab", "python-tag",
        "relationship-type", "no-type", "output-value"])
def test_shape_problems(tmp_path, text, place, message):
    path = write(tmp_path, text)
    find(problems_of(path), place, message)


def test_missing_file(tmp_path):
    find(problems_of(tmp_path / "nowhere.yaml"), "", "cannot read template")


def test_validate_returns_problems_instead_of_raising():
    assert validate(DATA / "misc" / "good.yaml") == []
    assert [p.place for p in validate(DATA / "cycle_bad.yaml")] == ["node_templates.alpha.requirements"]


# -- values of the wrong shape: problems, never tracebacks --------------------------------------------

MALFORMED = {
    "workflow_unknown_relationship": "call_operation on a target_relationship the node does not have",
    "workflow_target_relationship_list": "target_relationship is a list",
    "workflow_on_success_scalar": "on_success is a number",
    "node_properties_list": "node template properties are a list",
    "node_capabilities_list": "node template capabilities are a list",
    "operation_dependencies_scalar": "implementation dependencies are a number",
    "interface_int_key": "an interface named by a number",
    "type_interfaces_list": "a node type's interfaces are a list",
    "type_requirements_scalar": "a node type's requirements are a number",
    "type_section_list": "a type section is a list",
    "topology_mixed_keys": "unknown topology sections named by a number and a string",
    "deep_nesting": "a value nested 700 lists deep",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_structure_is_a_load_error(name):
    path = DATA / "malformed" / f"{name}.yaml"
    failure = "loaded without a problem"
    try:
        load(path)
    except LoadError as exc:
        assert exc.problems and all(p.file == str(path) and p.message for p in exc.problems), exc.problems
        failure = None
    except Exception as exc:  # noqa: BLE001 - reported briefly: a RecursionError's traceback takes seconds
        failure = f"load raised {type(exc).__name__}: {exc}"
    if failure:
        pytest.fail(failure, pytrace=False)


def test_workflow_step_on_unknown_relationship_names_it():
    problems = problems_of(DATA / "malformed" / "workflow_unknown_relationship.yaml")
    find(problems, "topology_template.workflows.connect.steps.wire.target_relationship",
         "has no requirement 'no_such_requirement'")


def test_derived_from_loop_is_a_problem_not_a_hang():
    with returns_within(HANG_BOUND, "load of derived_from_loop.yaml"):
        problems = problems_of(DATA / "derived_from_loop.yaml")
    problem = find(problems, None, "derived_from loop")
    assert "test.nodes.Chicken" in problem.message and "test.nodes.Egg" in problem.message
    assert "test.nodes.Chicken" in problem.place or "test.nodes.Egg" in problem.place


# -- workflow inputs read by node templates -------------------------------------------------------------


def test_workflow_input_used_by_an_operation():
    topology = load(DATA / "workflow_inputs.yaml")
    assert topology.workflows["tune"].inputs["level"].default == 3
    assert "level" not in topology.input_values  # a workflow input, not a topology one
    configure = topology.nodes["server"].operations["Standard.configure"]
    assert dict(configure.inputs) == {"level": {"get_input": "level"}}


def test_workflow_input_with_empty_definition():
    """An input declared with nothing (`level:`) is a required string with no default, as the file says."""
    topology = load(DATA / "workflow_input_null.yaml")
    level = topology.workflows["tune"].inputs["level"]
    assert (level.name, level.type, level.required, level.has_default, level.default, level.constraints) == (
        "level", "string", True, False, None, ())


# -- floats, integers and tosca-parser ------------------------------------------------------------------

FLOATS = """\
    tosca_definitions_version: tosca_simple_yaml_1_3
    node_types:
      t.nodes.Tuned:
        derived_from: tosca.nodes.Root
        properties:
          ratio: { type: float, default: 1 }
    topology_template:
      node_templates:
        tuned:
          type: t.nodes.Tuned
          properties: { ratio: RATIO }
      policies:
        - retry:
            type: orch.policies.Retry
            properties: { failure_retries: 1, delay: 1 }
    """


def test_an_integer_is_a_float(tmp_path):
    topology = load(write(tmp_path, FLOATS.replace("RATIO", "3")))
    assert topology.nodes["tuned"].properties["ratio"] == 3
    assert topology.policies["retry"]["properties"]["delay"] == 1


@pytest.mark.parametrize("ratio", ["three", "true", "[3]"])
def test_a_float_property_still_refuses_what_is_not_a_number(tmp_path, ratio):
    find(problems_of(write(tmp_path, FLOATS.replace("RATIO", ratio))), None, "is not a float")


# -- the same type names in two loads -------------------------------------------------------------------


def test_what_one_load_learnt_about_a_type_does_not_leak_into_the_next(tmp_path):
    """tosca-parser's type lookups are remembered during a parse: the next parse, whose type of the same
    name is another, must not see them."""
    strict = write(tmp_path, """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          t.nodes.Base: { derived_from: tosca.nodes.Root, properties: { size: { type: integer } } }
          t.nodes.App: { derived_from: t.nodes.Base }
        topology_template:
          node_templates:
            app: { type: t.nodes.App }
        """, "strict.yaml")
    lenient = write(tmp_path, """\
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          t.nodes.Base: { derived_from: tosca.nodes.Root }
          t.nodes.App: { derived_from: t.nodes.Base }
        topology_template:
          node_templates:
            app: { type: t.nodes.App }
        """, "lenient.yaml")
    for _ in range(2):
        find(problems_of(strict), "node_templates.app", "size")
        assert set(load(lenient).nodes) == {"app"}


# -- the collector paused during a load -----------------------------------------------------------------


def test_the_garbage_collector_runs_again_after_a_load():
    import gc

    from orchestrator.gcpause import paused_gc

    assert gc.isenabled()
    load(DATA / "misc" / "good.yaml")
    with pytest.raises(LoadError):
        load(DATA / "parser_bad.yaml")
    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost pause resumes it
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # nor resumes what was not running
    finally:
        gc.enable()


@pytest.mark.parametrize(("name", "kind"), [("memory", "scalar-unit.size"), ("walltime", "scalar-unit.time"),
                                            ("release", "version")])
def test_a_scalar_unit_or_version_input_is_checked_by_orch_without_showing_the_value(name, kind):
    """tosca-parser's messages for these types show the value ('"..." is not a valid scalar-unit.'):
    orch checks them first, and names only the input and its type."""
    problems = problems_of(DATA / "inputs_units.yaml", {name: SECRET})
    find(problems, f"topology_template.inputs.{name}", f"expected a {kind}")
    assert not [p for p in problems if SECRET in str(p)], problems


@pytest.mark.parametrize(("name", "value"), [("memory", "4 GiB"), ("memory", "2048MB"), ("walltime", "2 h"),
                                             ("walltime", "90 s"), ("release", "1.12"), ("release", "2.0.1.beta-3"),
                                             ("release", 3)])
def test_valid_scalar_unit_and_version_inputs_are_accepted(name, value):
    assert validate(DATA / "inputs_units.yaml", {name: value}) == []


def test_property_kinds_are_checked_no_stricter_than_tosca_parser(tmp_path):
    """orch reports a property of the wrong kind at its place; what tosca-parser takes ("80" for an integer,
    an integer for a float, "true" for a boolean) it takes too."""
    head = textwrap.dedent("""\
        tosca_definitions_version: tosca_simple_yaml_1_3
        node_types:
          t.Svc:
            derived_from: tosca.nodes.Root
            properties:
              port: { type: integer }
              ratio: { type: float }
              enabled: { type: boolean }
              opts: { type: list }
        topology_template:
          node_templates:
            svc:
              type: t.Svc
              properties:
        """)
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(head + '        port: "80"\n        ratio: 1\n        enabled: "true"\n        opts: [a]\n')
    assert validate(good) == []
    bad.write_text(head + "        port: eighty\n        ratio: half\n        enabled: maybe\n        opts: a\n")
    problems = validate(bad)
    for prop, kind in (("port", "an integer"), ("ratio", "a float"), ("enabled", "a boolean"), ("opts", "a list")):
        find(problems, f"node_templates.svc.properties.{prop}", f"is not {kind}")
