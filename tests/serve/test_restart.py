"""Executions survive the server: `orch serve` killed with SIGKILL while a scientist's job runs, then
started again, finds the execution, watches the job it had submitted (never submits it again) and finishes
it, with the right results; the execution queued behind it runs next. A real server process on
loopback, real Ansible, a real background job."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from live_server import Server

from orchestrator.api import Orchestrator

JOBS = Path(__file__).resolve().parents[1] / "integration" / "data" / "jobs.yaml"
EXPOSED = "jobs@local@exec_job"


def test_a_server_killed_during_a_job_finishes_it_after_a_restart_without_resubmitting_then_runs_the_queue(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out"
    out.mkdir()
    api = Orchestrator(home)
    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    api.expose("jobs", "exec_job", EXPOSED)
    token = api.create_user("alice")
    api.close()
    headers = {"Authorization": f"Bearer {token}"}
    server = Server(home, tmp_path / "serve.log")
    server.start()
    try:
        started = httpx.post(f"{server.url}/api/v1/executions", headers=headers, timeout=30,
                             json={"workflow": EXPOSED, "inputs": {"message": "survived", "sleep_a": 8}})
        assert started.status_code == 202, started.text
        execution_id = started.json()["id"]
        deadline = time.monotonic() + 120
        job_dirs: list[Path] = []
        while time.monotonic() < deadline and not job_dirs:  # job_a is running in the background
            job_dirs = [p for p in (out / "jobs").glob("job_a-*") if (p / "pid").exists()]
            time.sleep(0.2)
        assert job_dirs, "job_a never started"
        queued = httpx.post(f"{server.url}/api/v1/executions", headers=headers, timeout=30,
                            json={"workflow": EXPOSED, "inputs": {"message": "queued behind"}})
        assert queued.status_code == 202, queued.text
        queued_id = queued.json()["id"]
        server.kill()
        assert not (job_dirs[0] / "exit_code").exists(), "the job ended before the server was killed"

        server.start()  # finds the execution interrupted, resumes it: watches job_a again
        first, second = (wait_over(server.url, headers, e) for e in (execution_id, queued_id))
        assert first["status"] == "done", first
        assert second["status"] == "done" and second["started"] >= first["ended"], second
        assert (out / "b").read_text() == "queued behind\n"
        # one job_a of each execution: the resumed one watched its job again, never submitted it anew
        assert len(list((out / "jobs").glob("job_a-*"))) == 2, "job_a was submitted again"
        assert (out / "a").read_text().strip() == "A"
    finally:
        server.stop()


def wait_over(url: str, headers: dict, execution_id: str) -> dict:
    deadline = time.monotonic() + 180
    body = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{url}/api/v1/executions/{execution_id}", headers=headers, timeout=30).json()
        if body["status"] not in ("running", "interrupted", "queued"):
            break
        time.sleep(0.3)
    return body
