"""orch deploy onto the simulated site over real SSH: files on two hosts (and nowhere else), a real
Slurm job submitted by an Ansible operation and observed until it completes, undeploy cleaning up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "site-deploy.yaml"

pytestmark = pytest.mark.e2e


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_deploy_onto_site_over_ssh_with_a_slurm_job(sim_site, tmp_path):
    home = tmp_path / "home"
    site_file = sim_site.directory / "site.yaml"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "e2e", "-i", str(site_file))
    assert deployed.returncode == 0, deployed.stderr
    assert "Traceback" not in deployed.stderr

    login_name = sim_site.ssh("login", "hostname").stdout.strip()
    data_name = sim_site.ssh("data", "hostname").stdout.strip()
    login_txt = f"{sim_site['work_dir']}/orch-e2e/login.txt"
    data_txt = f"{sim_site['data_dir']}/orch-e2e/data.txt"
    assert sim_site.ssh("login", f"cat {login_txt}").stdout == f"{login_name} login_file\n"
    assert sim_site.ssh("data", f"cat {data_txt}").stdout == f"{data_name} data_file\n"
    # each file exists only on its own host, and not on this machine
    assert sim_site.ssh("data", f"test -e {login_txt}").returncode == 1
    assert sim_site.ssh("login", f"test -e {data_txt}").returncode == 1
    assert not Path(login_txt).exists() and not Path(data_txt).exists()
    # written as the cluster user, not root
    assert sim_site.ssh("login", f"stat -c %U {login_txt}").stdout.strip() == sim_site["ssh_user"] != "root"

    status = json.loads(orch(home, "status", "e2e", "--json").stdout)
    assert status["nodes"]["login_file"]["attributes"]["written_on"] == login_name
    assert status["nodes"]["data_file"]["host"] == "data"

    outputs = json.loads(orch(home, "outputs", "e2e", "--json").stdout)
    assert outputs["job_state"] == "COMPLETED"
    job_id = outputs["job_id"]
    shown = sim_site.ssh("login", f"scontrol show job {job_id}").stdout
    assert "JobState=COMPLETED" in shown and "ExitCode=0:0" in shown
    assert status["nodes"]["probe"]["attributes"]["job_output"] == f"{login_name}\nprobe-ok\n"

    undeployed = orch(home, "undeploy", "e2e")
    assert undeployed.returncode == 0, undeployed.stderr
    assert sim_site.ssh("login", f"test -e {login_txt}").returncode == 1
    assert sim_site.ssh("data", f"test -e {data_txt}").returncode == 1
