"""`orch run` with real background processes on localhost (orch.nodes.LocalJob): declared order, workflow
inputs over topology inputs, a failing job, cancel, resume, logs that follow a run, workflow problems."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
JOBS = DATA / "jobs.yaml"


def orch(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def spawn(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


@pytest.fixture
def deployed(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    result = orch(home, "deploy", str(JOBS), "-n", "jobs", "--set", f"out_dir={out}")
    assert result.returncode == 0, result.stderr
    return home, out


def runs(home: Path, execution_id: str) -> dict:
    store = Store(home)
    try:
        return {r.step_id: r for r in store.operation_runs("jobs", execution_id)}
    finally:
        store.close()


def execution(home: Path, execution_id: str) -> dict:
    rows = json.loads(orch(home, "executions", "jobs", "--json").stdout)
    return next(r for r in rows if r["id"] == execution_id)


def test_jobs_run_in_declared_order_with_workflow_inputs(deployed):
    home, out = deployed
    result = orch(home, "run", "jobs", "--set", "message=from the run")
    assert result.returncode == 0, result.stderr
    execution_id = result.stdout.strip().splitlines()[0]
    steps = runs(home, execution_id)
    a_run, b_submit, c_submit, c_run = (steps["run_a#4"], steps["run_b#1"], steps["run_c#0"], steps["run_c#1"])
    # b follows a (on_success): submitted only after a's monitor saw it complete
    assert b_submit.started >= a_run.ended
    # c is beside a: its job was submitted and watched while a's was
    assert c_submit.started < a_run.ended and c_run.started < a_run.ended
    # workflow input over the topology input of the same name
    assert (out / "b").read_text() == "from the run\n"
    assert (out / "a").read_text() == "A\n" and (out / "c").read_text() == "C\n"
    record = execution(home, execution_id)
    assert record["status"] == "done" and record["inputs"]["message"] == "from the run"
    assert record["outputs"]["b_file"] == f"{out}/b"
    status = json.loads(orch(home, "status", "jobs", "--json").stdout)
    assert status["nodes"]["job_b"]["state"] == "executed"
    assert status["nodes"]["job_b"]["attributes"]["job_output_file"].endswith("/stdout")

    # a second run with other inputs, without redeploying
    again = orch(home, "run", "jobs", "--set", "message=second time")
    assert again.returncode == 0, again.stderr
    assert (out / "b").read_text() == "second time\n"


def test_failing_job_fails_the_execution_with_its_error_and_resume_reruns_only_that(deployed):
    home, _ = deployed
    failed = orch(home, "run", "jobs", "--set", "message=m", "--set", "fail_b=true")
    assert failed.returncode == 1
    execution_id = failed.stdout.strip().splitlines()[0]
    assert "exit code 3" in failed.stderr and "b broke on purpose" in failed.stderr
    record = execution(home, execution_id)
    assert record["status"] == "failed" and "b broke on purpose" in record["error"]
    before = runs(home, execution_id)
    assert before["run_b#3"].status == "failed"

    resumed = orch(home, "run", "jobs", "--resume", execution_id, "--set", "fail_b=false")
    assert resumed.returncode == 0, resumed.stderr
    store = Store(home)
    all_runs = store.operation_runs("jobs", execution_id)
    store.close()
    counts: dict[str, int] = {}
    for run in all_runs:
        counts[run.step_id] = counts.get(run.step_id, 0) + 1
    # what succeeded is not run again; the failed job is submitted anew and watched again
    assert counts["run_a#1"] == 1 and counts["run_a#4"] == 1 and counts["run_c#0"] == 1
    assert counts["run_b#1"] == 2 and counts["run_b#3"] == 2
    assert execution(home, execution_id)["status"] == "done"


def test_cancel_stops_a_running_local_job(deployed):
    home, out = deployed
    running = spawn(home, "run", "jobs", "--set", "message=m", "--set", "sleep_a=120")
    execution_id = running.stdout.readline().strip()
    job_dir = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job_dir is None:
        for candidate in (out / "jobs").glob("job_a-*"):
            if (candidate / "pid").exists():
                job_dir = candidate
        time.sleep(0.2)
    assert job_dir is not None, "job_a never started"
    pid = int((job_dir / "pid").read_text().split()[0])
    os.kill(pid, 0)  # the job's process is alive

    cancelled = orch(home, "run", "jobs", "--cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{execution_id}: cancelled"
    assert running.wait(timeout=60) == 1
    with pytest.raises(ProcessLookupError):
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    assert not (out / "a").exists()
    assert execution(home, execution_id)["status"] == "cancelled"
    assert not (out / "b").exists()  # nothing after the cancelled job ran


def test_logs_follow_a_run_as_it_happens(deployed):
    home, _ = deployed
    running = spawn(home, "run", "jobs", "--set", "message=m", "--set", "sleep_a=8")
    execution_id = running.stdout.readline().strip()
    follower = spawn(home, "logs", "jobs", execution_id, "--follow")
    first_task_line = None
    while True:
        line = follower.stdout.readline()
        assert line, "logs --follow ended without a task line"
        if " task " in line:
            first_task_line = line
            break
    # a task line arrived while the run was still going: the log streams, it is not printed at the end
    assert running.poll() is None
    assert "Runnable.submit" in first_task_line
    assert running.wait(timeout=180) == 0
    rest = follower.communicate(timeout=60)[0]
    assert follower.returncode == 0
    assert "workflow exec_job done" in rest


def test_workflow_problems_are_reported(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((DATA / "jobs.yaml").read_text()
                      .replace("target: job_c", "target: job_x")
                      .replace("on_success: [ run_b ]", "on_success: [ run_b ]\n        run_loop_1:\n"
                               "          target: job_a\n          activities: [ { call_operation: Runnable.nope } ]\n"
                               "          on_success: [ run_loop_2 ]\n        run_loop_2:\n          target: job_a\n"
                               "          activities: [ { set_state: x } ]\n          on_success: [ run_loop_1 ]"))
    result = orch(tmp_path / "home", "validate", str(broken), "--set", "out_dir=/tmp")
    assert result.returncode == 2
    text = result.stderr
    assert "workflows.exec_job.steps.run_c.target: unknown target node 'job_x'" in text
    assert "unknown operation 'Runnable.nope'" in text and "run_loop_1.activities[0]" in text
    assert "step cycle: run_loop_1 -> run_loop_2 -> run_loop_1" in text
    assert "Traceback" not in text


def test_missing_required_workflow_input_is_refused_before_anything_runs(deployed):
    home, _ = deployed
    result = orch(home, "run", "jobs")
    assert result.returncode == 2
    assert "workflows.exec_job.inputs.message: required input has no value" in result.stderr
    rows = json.loads(orch(home, "executions", "jobs", "--json").stdout)
    assert [r["workflow"] for r in rows] == ["install"]
