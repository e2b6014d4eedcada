"""The API's start / follow / cancel: work started in the background gives its execution id at once,
any number of readers follow its events, it is cancelled by id, and two executions run in one process
(real Ansible, real background jobs on localhost: orch.nodes.LocalJob)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from orchestrator.api import DeploymentBusy, LoadError, Orchestrator, UsageError

DATA = Path(__file__).parent / "data"
JOBS = DATA / "jobs.yaml"


def _follow_all(api: Orchestrator, name: str, execution_id: str, into: list) -> threading.Thread:
    def read() -> None:
        reader = Orchestrator(api.home)  # a reader of its own, as another client of a service would be
        try:
            into.extend(event.id for event in reader.follow(name, execution_id, poll=0.1))
        finally:
            reader.close()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_two_deployments_deploy_and_run_at_once_in_one_process_and_every_follower_sees_every_event(tmp_path):
    api = Orchestrator(tmp_path / "home", workers=2)
    outs = {name: tmp_path / name for name in ("left", "right")}
    for out in outs.values():
        out.mkdir()
    deploys = {name: api.start_deploy(name, str(JOBS), {"out_dir": str(out)}) for name, out in outs.items()}
    for name, work in deploys.items():
        assert work.execution_id and api.execution(name, work.execution_id).workflow == "install"
    for work in deploys.values():
        assert work.wait(timeout=300).outcome.ok

    runs = {name: api.start_run(name, None, {"message": f"hello {name}", "sleep_a": 2}) for name in outs}
    # both are running at the same time, in this process: each holds its own deployment's lock
    assert all(api.store.lock(name).execution_id == work.execution_id for name, work in runs.items())
    followed: dict[str, list[list[int]]] = {name: [[], []] for name in outs}
    readers = [_follow_all(api, name, runs[name].execution_id, seen) for name in outs for seen in followed[name]]
    for work in runs.values():
        assert work.wait(timeout=300).outcome.ok
    for reader in readers:
        reader.join(timeout=60)
        assert not reader.is_alive(), "a follower did not stop once its execution ended"
    for name, work in runs.items():
        stored = [e.id for e in api.events(name, work.execution_id)]
        assert followed[name] == [stored, stored]  # every follower, every event, in order
        assert api.execution(name, work.execution_id).status == "done"
        assert (outs[name] / "a").read_text().strip() == "A"
    api.close()


def test_a_background_run_is_cancelled_by_id_and_its_job_stopped(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    api = Orchestrator(tmp_path / "home")
    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    work = api.start_run("jobs", None, {"message": "m", "sleep_a": 120})
    pid_files: list[Path] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not pid_files:
        pid_files = [p / "pid" for p in (out / "jobs").glob("job_a-*") if (p / "pid").exists()]
        time.sleep(0.2)
    assert pid_files, "job_a never started"
    pid = int(pid_files[0].read_text().split()[0])
    os.kill(pid, 0)

    assert api.cancel("jobs", work.execution_id) == "cancelled"
    result = work.wait(timeout=60)
    assert result is not None and result.outcome.cancelled and not result.outcome.ok
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    assert not (out / "a").exists()
    api.close()


def test_bad_input_and_a_busy_deployment_are_raised_by_start_itself(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    api = Orchestrator(tmp_path / "home")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tosca_definitions_version: tosca_simple_yaml_1_3\ntopology_template:\n  node_templates:\n"
                   "    a: { type: no.such.Type }\n")
    with pytest.raises(LoadError, match=r"no\.such\.Type"):
        api.start_deploy("bad", str(bad), {})
    assert api.list() == []
    with pytest.raises(UsageError, match=r"no deployment named 'nothing'"):
        api.start_run("nothing", None, {})

    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    first = api.start_run("jobs", None, {"message": "m", "sleep_a": 30})
    # a second execution of the same deployment, even from this process, is refused while the first runs
    with pytest.raises(DeploymentBusy, match="run"):
        api.start_run("jobs", None, {"message": "m"})
    api.cancel("jobs", first.execution_id)
    assert first.wait(timeout=60).outcome.cancelled
    api.close()
