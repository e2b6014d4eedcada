"""Executions survive the server: `orch serve` killed with SIGKILL while a scientist's job runs, then
started again, finds the execution, watches the job it had submitted (never submits it again) and finishes
it, with the right results. A real server process on loopback, real Ansible, a real background job."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orchestrator.api import Orchestrator

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "tests" / "integration" / "data" / "jobs.yaml"
EXPOSED = "jobs@local@exec_job"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, log: Path):
        self.home, self.log = home, log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", "--home", str(self.home), "serve", "--port", str(self.port)],
                cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("orch serve did not answer: " + self.log.read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def test_a_server_killed_during_a_job_finishes_it_after_a_restart_without_resubmitting(tmp_path):
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
        server.kill()
        assert not (job_dirs[0] / "exit_code").exists(), "the job ended before the server was killed"

        server.start()  # finds the execution interrupted, resumes it: watches job_a again
        deadline = time.monotonic() + 180
        body = {}
        while time.monotonic() < deadline:
            body = httpx.get(f"{server.url}/api/v1/executions/{execution_id}", headers=headers, timeout=30).json()
            if body["status"] != "running" and body["status"] != "interrupted":
                break
            time.sleep(0.3)
        assert body["status"] == "done", body
        assert (out / "b").read_text() == "survived\n"
        assert len(list((out / "jobs").glob("job_a-*"))) == 1, "job_a was submitted again"
        assert (out / "a").read_text().strip() == "A"
    finally:
        server.stop()
