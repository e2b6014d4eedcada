"""What orch says matches what it does (issue 13): resume of a finished deployment, a deploy over an
existing one, operation inputs written as parameter definitions and interface inputs, implementations
written as artifact definitions, executions whose process died, outputs of unfinished executions,
unknown execution ids, the version and the status table. Each through the CLI with real playbooks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
JOBS = DATA / "jobs.yaml"


def orch(home: Path, *args: str, timeout: float = 300, columns: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def spawn(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def operation_runs(home: Path, name: str) -> list:
    store = Store(home)
    try:
        return store.operation_runs(name)
    finally:
        store.close()


# -- 2. resume of a finished deployment; deploy over an existing one -----------------------------------


def test_resume_of_a_finished_deployment_runs_nothing_and_says_so(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    deployed = orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}")
    assert deployed.returncode == 0, deployed.stderr
    runs_before = len(operation_runs(home, "hello"))
    assert runs_before > 0

    resumed = orch(home, "deploy", "--resume", "hello")
    assert resumed.returncode == 0, resumed.stderr
    assert "hello is deployed: nothing to resume" in resumed.stderr
    assert "▶" not in resumed.stderr
    assert len(operation_runs(home, "hello")) == runs_before, "resume of a finished deployment ran operations"
    assert json.loads(orch(home, "status", "hello", "--json").stdout)["status"] == "deployed"
    # a new value on a resume that runs nothing would be silently dropped: refused, naming it
    changed = orch(home, "deploy", "--resume", "hello", "--set", f"workdir={tmp_path / 'elsewhere'}")
    assert changed.returncode == 2
    assert "values given for workdir would not be used" in changed.stderr
    same = orch(home, "deploy", "--resume", "hello", "--set", f"workdir={work}")
    assert same.returncode == 0 and "nothing to resume" in same.stderr
    assert len(operation_runs(home, "hello")) == runs_before


def test_a_deploy_over_an_existing_deployment_says_it_runs_everything_again(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    first = orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}")
    assert first.returncode == 0, first.stderr
    assert "deploying hello\n" in first.stderr and "again" not in first.stderr
    first_runs = len(operation_runs(home, "hello"))
    again = orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}")
    assert again.returncode == 0, again.stderr
    assert "deploying hello again (it exists, deployed): every operation runs again" in again.stderr
    assert "orch deploy --resume hello" in again.stderr
    assert len(operation_runs(home, "hello")) == 2 * first_runs


def test_a_kill_between_the_last_operation_and_the_end_leaves_a_resume_with_nothing_to_rerun(tmp_path):
    """The end of a deploy (execution done, deployment deployed, closing event) is one transaction: a
    store as a kill could leave it before (execution done, deployment still deploying) is mended by
    resume without running anything."""
    home, work = tmp_path / "home", tmp_path / "work"
    assert orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}").returncode == 0
    runs_before = len(operation_runs(home, "hello"))
    store = Store(home)
    try:
        store.set_deployment_status("hello", "deploying")  # what an older orch killed at that moment left
    finally:
        store.close()
    resumed = orch(home, "deploy", "--resume", "hello")
    assert resumed.returncode == 0, resumed.stderr
    assert "nothing to resume" in resumed.stderr
    assert len(operation_runs(home, "hello")) == runs_before
    assert json.loads(orch(home, "status", "hello", "--json").stdout)["status"] == "deployed"


def test_deploy_of_a_missing_file_says_nothing_before_the_error(tmp_path):
    result = orch(tmp_path / "home", "deploy", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "deploying" not in result.stderr
    assert "missing.yaml: cannot read template" in result.stderr


def test_the_hint_after_deploying_a_topology_with_a_workflow_is_run(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    result = orch(home, "deploy", str(JOBS), "-n", "jobs", "--set", f"out_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "next: orch run jobs" in result.stderr


def test_resume_of_a_succeeded_execution_runs_nothing_and_succeeds(tmp_path):
    """As a resume of a finished deploy: `run --resume` of an execution that succeeded (orch killed after
    recording its end, before exiting, leaves exactly this to a script that resumes) runs nothing, says so
    and exits 0; an unknown execution is still an error."""
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    assert orch(home, "deploy", str(JOBS), "-n", "jobs", "--set", f"out_dir={out}").returncode == 0
    ran = orch(home, "run", "jobs", "--set", "message=hi", "--set", "sleep_a=0")
    assert ran.returncode == 0, ran.stderr
    execution = ran.stdout.split()[0]
    runs_before = len(operation_runs(home, "jobs"))
    resumed = orch(home, "run", "jobs", "--resume", execution)
    assert resumed.returncode == 0, resumed.stderr
    assert f"execution {execution} succeeded: nothing to resume" in resumed.stderr
    assert len(operation_runs(home, "jobs")) == runs_before
    unknown = orch(home, "run", "jobs", "--resume", "deadbeef")
    assert unknown.returncode == 2 and "no execution 'deadbeef'" in unknown.stderr


# -- 3. TOSCA that used to be dropped without a word ---------------------------------------------------


HELLO_WORLD = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    marker: {{ type: string, default: hello-marker }}
  node_templates:
    hello:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          inputs:
            shared: {{ type: string, value: from-the-interface }}
          operations:
            create:
              implementation: {playbook}
              inputs:
                marker: {{ value: {{ get_input: marker }}, type: string }}
                out: {{ type: string, value: {out}/create }}
            configure:
              implementation: {{ file: {playbook}, type: tosca.artifacts.Implementation.Ansible }}
              inputs:
                marker: plain-value
                shared: the-operation-wins
                out: {out}/configure
"""

WRITE = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy: { content: "{{ marker }} {{ shared }}\\n", dest: "{{ out }}" }
"""


def test_parameter_definitions_interface_inputs_and_artifact_implementations_reach_the_playbook(tmp_path):
    (tmp_path / "write.yaml").write_text(WRITE)
    out = tmp_path / "out"
    out.mkdir()
    topology = tmp_path / "hello.yaml"
    topology.write_text(HELLO_WORLD.format(playbook=tmp_path / "write.yaml", out=out))
    deployed = orch(tmp_path / "home", "deploy", str(topology), "--set", "marker=given")
    assert deployed.returncode == 0, deployed.stderr
    assert "(2 operations run)" in deployed.stderr, "an implementation written as an artifact was skipped"
    assert (out / "create").read_text() == "given from-the-interface\n"
    assert (out / "configure").read_text() == "plain-value the-operation-wins\n"


BAD_FORMS = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.T:
    derived_from: tosca.nodes.Root
    interfaces:
      Standard:
        create:
          implementation: {playbook}
          inputs:
            needed: {{ type: string, required: true }}
topology_template:
  node_templates:
    a:
      type: my.T
    b:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          create:
            implementation: {{ primry: {playbook} }}
          configure:
            implementation: {{ file: {playbook}, bogus: 1 }}
          start:
            implementation: {{ dependencies: [ {playbook} ] }}
"""


def test_implementations_orch_cannot_run_and_required_inputs_without_value_are_refused(tmp_path):
    (tmp_path / "write.yaml").write_text(WRITE)
    topology = tmp_path / "bad.yaml"
    topology.write_text(BAD_FORMS.format(playbook=tmp_path / "write.yaml"))
    result = orch(tmp_path / "home", "validate", str(topology))
    assert result.returncode == 2, result.stdout
    text = result.stderr
    assert "node_templates.a.interfaces.Standard.create.inputs.needed: a required input with no value" in text
    assert "node_templates.b.interfaces.Standard.create.implementation: unknown key primry" in text
    assert "node_templates.b.interfaces.Standard.configure.implementation: unknown key bogus" in text
    assert "node_templates.b.interfaces.Standard.start.implementation: an implementation mapping needs" in text
    assert "Traceback" not in text


# -- 4. executions whose process died; outputs of unfinished executions -------------------------------


def _deploy_jobs(tmp_path: Path) -> tuple[Path, Path]:
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    result = orch(home, "deploy", str(JOBS), "-n", "jobs", "--set", f"out_dir={out}")
    assert result.returncode == 0, result.stderr
    return home, out


def _wait_for_job_pid(out: Path, prefix: str) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for candidate in (out / "jobs").glob(f"{prefix}-*"):
            if (candidate / "pid").exists():
                return int((candidate / "pid").read_text().split()[0])
        time.sleep(0.2)
    raise AssertionError(f"{prefix} never started")


def test_an_execution_whose_orch_was_killed_shows_interrupted_with_its_resume_command(tmp_path):
    home, out = _deploy_jobs(tmp_path)
    running = spawn(home, "run", "jobs", "--set", "message=m", "--set", "sleep_a=30")
    execution_id = running.stdout.readline().strip()
    job_pid = _wait_for_job_pid(out, "job_a")
    running.send_signal(signal.SIGKILL)
    running.wait(timeout=30)
    try:
        rows = json.loads(orch(home, "executions", "jobs", "--json").stdout)
        record = next(r for r in rows if r["id"] == execution_id)
        assert record["status"] == "interrupted"
        assert record["resume"] == f"orch run jobs --resume {execution_id}"
        assert record["outputs"] is None
        table = orch(home, "executions", "jobs", columns=200).stdout
        assert f"{execution_id} was interrupted: its process is gone; resume it with: orch run jobs --resume " \
               f"{execution_id}" in table
        # following it ends at once with the same advice, instead of waiting forever
        followed = orch(home, "logs", "jobs", execution_id, "--follow", timeout=60)
        assert followed.returncode == 0
        assert "was interrupted" in followed.stderr and f"orch run jobs --resume {execution_id}" in followed.stderr
    finally:
        try:
            os.killpg(job_pid, signal.SIGKILL)  # the job runs in its own session, as a batch job would
        except ProcessLookupError:
            pass


def test_a_cancelled_execution_has_no_outputs_and_outputs_say_whose_results_they_are(tmp_path):
    home, out = _deploy_jobs(tmp_path)
    done = orch(home, "run", "jobs", "--set", "message=first")
    assert done.returncode == 0, done.stderr
    done_id = done.stdout.split()[0]
    (out / "b").unlink()

    running = spawn(home, "run", "jobs", "--set", "message=m", "--set", "sleep_a=60")
    execution_id = running.stdout.readline().strip()
    _wait_for_job_pid(out, "job_a")
    cancelled = orch(home, "run", "jobs", "--cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert running.wait(timeout=60) == 1
    rows = {r["id"]: r for r in json.loads(orch(home, "executions", "jobs", "--json").stdout)}
    assert rows[execution_id]["status"] == "cancelled"
    assert rows[execution_id]["outputs"] is None, "a cancelled execution's outputs look like results"
    assert rows[done_id]["outputs"] == {"b_file": f"{out}/b"}
    outputs = orch(home, "outputs", "jobs")
    assert f"the latest execution {execution_id} is cancelled" in outputs.stderr
    assert f"execution {done_id}'s" in outputs.stderr


# -- 7 and 10. unknown ids, version, status at 80 columns ----------------------------------------------


def test_logs_of_an_unknown_execution_is_an_error_with_or_without_follow(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    assert orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}").returncode == 0
    for extra in ((), ("--follow",)):
        result = orch(home, "logs", "hello", "nosuchid", *extra, timeout=60)
        assert result.returncode == 2, extra
        assert "no execution 'nosuchid' of deployment 'hello'" in result.stderr
    unknown = orch(home, "logs", "nosuchdeployment", timeout=60)
    assert unknown.returncode == 2 and "no deployment named 'nosuchdeployment'" in unknown.stderr


def test_version(tmp_path):
    result = orch(tmp_path / "home", "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("orch ") and result.stdout.split()[1][0].isdigit()


def test_status_shows_whole_attribute_values_at_80_columns(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work-with-a-rather-long-folder-name-to-show-whole"
    assert orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}").returncode == 0
    attributes = json.loads(orch(home, "status", "hello", "--json").stdout)["nodes"]["database"]["attributes"]
    text = orch(home, "status", "hello", columns=80).stdout
    assert "…" not in text
    for key, value in attributes.items():
        assert f"database.{key}: {value}" in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith("database."))


def test_a_misspelt_implementation_key_is_a_problem_not_a_no_op(tmp_path):
    (tmp_path / "write.yaml").write_text(WRITE)
    topology = tmp_path / "typo.yaml"
    topology.write_text(f"""\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  node_templates:
    a:
      type: tosca.nodes.Root
      interfaces:
        Standard:
          create:
            implmentation: {tmp_path / "write.yaml"}
""")
    result = orch(tmp_path / "home", "validate", str(topology))
    assert result.returncode == 2
    assert "node_templates.a.interfaces.Standard.create: unknown key implmentation in an operation" in result.stderr
