"""Real playbooks on localhost through the engine: the hello example end to end, outputs flowing between
nodes, a failing playbook and resume, parallel branches, batches with exact per-operation results,
undeploy order, and the per-deployment lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.api import Orchestrator
from orchestrator.executors.ansible import AnsibleExecutor
from orchestrator.store.sqlite import DeploymentBusy, Store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def runs_by_step(home: Path, name: str) -> dict:
    store = Store(home)
    try:
        return {r.step_id: r for r in store.operation_runs(name)}
    finally:
        store.close()


def test_hello_deploys_shows_outputs_and_undeploys(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    deployed = orch(home, "deploy", "topologies/hello.yaml", "-n", "hello", "--set", f"workdir={work}")
    assert deployed.returncode == 0, deployed.stderr
    assert "Traceback" not in deployed.stderr

    outputs = json.loads(orch(home, "outputs", "hello", "--json").stdout)
    # app's start read back what configure wrote, which came from the relationship + get_operation_output
    assert outputs["app_message"] == "Hello from app on server"
    assert outputs["database_file"] == f"{work}/db/data.kv"
    assert (work / "report.txt").read_text() == "Hello from app on server\n"
    assert f"database={work}/db/data.kv" in (work / "app" / "app.conf").read_text()
    assert "source=app" in (work / "app" / "connection").read_text()

    status = json.loads(orch(home, "status", "hello", "--json").stdout)
    assert status["status"] == "deployed"
    assert {n: v["state"] for n, v in status["nodes"].items()} == {
        "server": "started", "database": "started", "app": "started", "report": "started"}
    assert status["nodes"]["database"]["attributes"]["db_file"] == f"{work}/db/data.kv"
    assert [d["name"] for d in json.loads(orch(home, "list", "--json").stdout)] == ["hello"]

    undeployed = orch(home, "undeploy", "hello")
    assert undeployed.returncode == 0, undeployed.stderr
    assert not (work / "app").exists() and not (work / "db").exists() and not (work / "report.txt").exists()
    assert json.loads(orch(home, "list", "--json").stdout) == []


def test_undeploy_runs_in_reverse_dependency_order(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    orchestrator = Orchestrator(home)
    assert orchestrator.deploy("hello", str(ROOT / "topologies/hello.yaml"), {"workdir": str(work)}).outcome.ok
    store = orchestrator.store
    execution_order: list[str] = []
    original = store.operation_done

    def spy(run_id, execution_id, deployment, step_id, *args, **kwargs):
        execution_order.append(step_id)
        return original(run_id, execution_id, deployment, step_id, *args, **kwargs)

    store.operation_done = spy  # records completion order; the store still does the work
    assert orchestrator.undeploy("hello").outcome.ok
    position = {step: i for i, step in enumerate(execution_order)}
    assert position["report.delete"] < position["app.delete"] < position["database.delete"]
    assert position["app.stop"] < position["app.delete"]
    assert position["app.delete"] < position["server.stop"]
    orchestrator.close()


def test_parallel_branches_overlap(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    result = orch(home, "deploy", str(DATA / "parallel.yaml"), "-n", "par", "--set", f"dir={work}")
    assert result.returncode == 0, result.stderr
    runs = runs_by_step(home, "par")
    left, right, joined = runs["left.create"], runs["right.create"], runs["joined.create"]
    # independent branches ran at the same time: their [started, ended] intervals intersect
    assert left.started < right.ended and right.started < left.ended
    # the node that depends on both started after both ended
    assert joined.started >= max(left.ended, right.ended)
    assert {p.name for p in work.iterdir()} == {"left.mark", "right.mark", "joined.mark"}


def test_batched_operations_keep_exact_outputs_and_pin_failures(tmp_path):
    home = tmp_path / "home"
    orchestrator = Orchestrator(home)
    result = orchestrator.deploy("wide", str(DATA / "wide.yaml"), {})
    assert result.outcome.ok
    attributes = orchestrator.store.attributes("wide")
    for node, value in {"n1": "one", "n2": "two", "n3": "three", "n4": "four", "n5": "five"}.items():
        assert attributes[node]["said"] == f"I am {node} with {value}"
        said = orchestrator.store.operation_output("wide", node, "Standard.create", "said")
        assert said == f"I am {node} with {value}"

    failed = orchestrator.deploy("wide2", str(DATA / "wide.yaml"), {"fail_node": "n3"})
    assert not failed.outcome.ok
    assert [f.node for f in failed.outcome.failures] == ["n3"]
    failure = failed.outcome.failures[0]
    assert failure.operation == "Standard.create" and failure.task == "Fail for the chosen node only"
    assert "planned failure of n3" in failure.message
    runs = {r.node: r.status for r in orchestrator.store.operation_runs("wide2") if r.operation == "Standard.create"}
    assert runs == {"n1": "done", "n2": "done", "n3": "failed", "n4": "done", "n5": "done"}
    orchestrator.close()


def test_a_warm_executor_runs_every_batch_in_its_one_worker_with_exact_results(tmp_path):
    """The worker that `orch deploy` starts before loading the topology (its warm-up play's messages
    carry request id 0) serves the batches; nothing of the warm-up leaks into their results."""
    home = tmp_path / "home"
    with AnsibleExecutor(home, warm=True) as executor:
        assert executor.workers_started == 1
        orchestrator = Orchestrator(home, workers=1, executor=executor)
        result = orchestrator.deploy("wide", str(DATA / "wide.yaml"), {"fail_node": "n3"})
        assert executor.workers_started == 1
    assert [(f.node, f.task) for f in result.outcome.failures] == [("n3", "Fail for the chosen node only")]
    assert orchestrator.store.attributes("wide")["n4"]["said"] == "I am n4 with four"
    runs = {r.node: r.status for r in orchestrator.store.operation_runs("wide") if r.operation == "Standard.create"}
    assert runs == {"n1": "done", "n2": "done", "n3": "failed", "n4": "done", "n5": "done"}
    assert executor.workers_started == 0
    orchestrator.close()


def test_failing_playbook_fails_deployment_and_resume_reruns_only_what_failed(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    marker = work / "marker"
    marker.write_text("x")
    args = ["deploy", str(DATA / "failing.yaml"), "-n", "fail", "--set", f"dir={work}", "--set", f"marker={marker}"]
    failed = orch(home, *args)
    assert failed.returncode == 1
    assert "fragile Standard.create" in failed.stderr
    assert "Refuse while the marker exists" in failed.stderr and "boom" in failed.stderr
    assert "Traceback" not in failed.stderr
    status = json.loads(orch(home, "status", "fail", "--json").stdout)
    assert status["status"] == "failed"
    assert status["nodes"]["first"]["state"] == "started"
    assert status["nodes"]["fragile"]["state"] == "creating"
    assert "last" not in status["nodes"] or status["nodes"]["last"]["state"] == "initial"

    marker.unlink()
    resumed = orch(home, "deploy", "--resume", "fail")
    assert resumed.returncode == 0, resumed.stderr
    runs = [r for r in runs_by_step_all(home, "fail")]
    first_creates = [r for r in runs if r.step_id == "first.create"]
    assert len(first_creates) == 1  # kept, not run again
    assert [r.status for r in runs if r.step_id == "fragile.create"] == ["failed", "done"]
    assert (work / "runs.log").read_text().split() == ["fragile"]
    assert json.loads(orch(home, "status", "fail", "--json").stdout)["status"] == "deployed"


def test_resume_with_set_mends_an_input(tmp_path):
    """`deploy --resume NAME --set k=v` resumes with the new value on top of the stored inputs."""
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    marker = work / "marker"
    marker.write_text("x")
    failed = orch(home, "deploy", str(DATA / "failing.yaml"), "-n", "fail", "--set", f"dir={work}",
                  "--set", f"marker={marker}")
    assert failed.returncode == 1
    resumed = orch(home, "deploy", "--resume", "fail", "--set", f"marker={work / 'no-marker'}")
    assert resumed.returncode == 0, resumed.stderr
    assert marker.exists() and (work / "runs.log").read_text().split() == ["fragile"]
    again = orch(home, "undeploy", "fail")  # and undeploy sees the mended value too
    assert again.returncode == 0, again.stderr


def runs_by_step_all(home: Path, name: str) -> list:
    store = Store(home)
    try:
        return store.operation_runs(name)
    finally:
        store.close()


def test_busy_deployment_is_refused_and_a_dead_holder_does_not_block(tmp_path):
    home = tmp_path / "home"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from orchestrator.store.sqlite import Store;"
         "s = Store(Path(sys.argv[1])); s.acquire('busy', 'deploy'); print('held', flush=True); time.sleep(60)",
         str(home)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = orch(home, "deploy", str(DATA / "wide.yaml"), "-n", "busy")
        assert refused.returncode == 2
        assert "busy" in refused.stderr and str(holder.pid) in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock no longer blocks
    store = Store(home)
    try:
        owner = store.acquire("busy", "deploy")
        # locks belong to a piece of work, not to a process: a second one of this same process is refused
        with pytest.raises(DeploymentBusy, match="'deploy' is running"):
            Store(home).acquire("busy", "undeploy")
        store.release("busy", owner)
        second = store.acquire("busy", "deploy")
        store.release("busy", "someone-else")  # only its owner's token releases a lock
        assert store.lock("busy").owner == second and store.lock("busy").live
        store.release("busy", second)
        assert store.lock("busy") is None
    finally:
        store.close()


def test_bad_input_writes_nothing(tmp_path):
    home = tmp_path / "home"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
                   "    a: { type: no.such.Type }\n")
    result = orch(home, "deploy", str(bad), "-n", "bad")
    assert result.returncode == 2
    assert "unknown node type 'no.such.Type'" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(orch(home, "list", "--json").stdout) == []


def test_ansible_runner_backend_gives_the_same_results(tmp_path, monkeypatch):
    """ORCH_ANSIBLE=runner: one ansible-playbook per batch through ansible-runner instead of the workers."""
    monkeypatch.setenv("ORCH_ANSIBLE", "runner")
    orchestrator = Orchestrator(tmp_path / "home")
    result = orchestrator.deploy("wide", str(DATA / "wide.yaml"), {"fail_node": "n2"})
    assert [f.node for f in result.outcome.failures] == ["n2"]
    assert "planned failure of n2" in result.outcome.failures[0].message
    assert orchestrator.store.attributes("wide")["n4"]["said"] == "I am n4 with four"
    orchestrator.close()
