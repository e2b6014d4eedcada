"""`orch run` of a Slurm job on the simulated site: submitted with sbatch over SSH, watched until Slurm
reports it COMPLETED, a failing job failing the execution, and cancel reaching scancel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "slurm-jobs.yaml"

pytestmark = pytest.mark.e2e


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def deployed(sim_site, tmp_path_factory):
    home = tmp_path_factory.mktemp("run-site") / "home"
    result = orch(home, "deploy", str(TOPOLOGY), "-n", "slurm", "-i", str(sim_site.directory / "site.yaml"))
    assert result.returncode == 0, result.stderr
    return home


def test_slurm_job_runs_to_completion(sim_site, deployed):
    home = deployed
    result = orch(home, "run", "slurm", "--set", "tag=first")
    assert result.returncode == 0, result.stderr
    execution_id = result.stdout.split()[0]
    status = json.loads(orch(home, "status", "slurm", "--json").stdout)
    out_file = status["nodes"]["job"]["attributes"]["job_output_file"]
    job_id = out_file.rsplit("slurm-", 1)[1].split(".")[0]
    shown = sim_site.ssh("login", f"scontrol show job {job_id}").stdout
    assert "JobState=COMPLETED" in shown and "JobName=orch-e2e" in shown
    assert sim_site.ssh("login", f"cat {out_file}").stdout == "done-first\n"
    assert f"job {job_id} of job: COMPLETED" in orch(home, "logs", "slurm", execution_id).stdout


def test_failing_slurm_job_fails_the_execution(sim_site, deployed):
    result = orch(deployed, "run", "slurm", "--set", "exit_code=4")
    assert result.returncode == 1
    assert "failed: Slurm state FAILED, exit code 4:0" in result.stderr


def test_cancel_stops_a_running_slurm_job(sim_site, deployed):
    home = deployed
    running = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "--home", str(home), "run", "slurm",
                                "--set", "seconds=300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT)
    execution_id = running.stdout.readline().strip()
    job_id = None
    deadline = time.monotonic() + 120
    while job_id is None and time.monotonic() < deadline:
        listed = sim_site.ssh("login", "squeue -h -n orch-e2e -t RUNNING -o %i").stdout.split()
        job_id = listed[0] if listed else None
        time.sleep(0.5)
    assert job_id, "the job never ran"
    cancelled = orch(home, "run", "slurm", "--cancel", execution_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert running.wait(timeout=120) == 1
    shown = sim_site.ssh("login", f"scontrol show job {job_id}").stdout
    assert "JobState=CANCELLED" in shown
    rows = json.loads(orch(home, "executions", "slurm", "--json").stdout)
    assert next(r for r in rows if r["id"] == execution_id)["status"] == "cancelled"
