"""orch on the simulated site logs in as the site file's unprivileged cluster user, as on a real
cluster: what a deployment makes on the login host belongs to that user, and its Slurm job runs
with the user's uid (not root's)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "site-user.yaml"

pytestmark = pytest.mark.e2e


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, stdin=subprocess.DEVNULL,
                          check=False)


def test_the_site_file_user_is_not_root(sim_site):
    assert sim_site["ssh_user"] not in ("", "root")
    assert sim_site.ssh("login", "id -u").stdout.strip() != "0"


def test_what_a_deployment_makes_belongs_to_the_cluster_user(sim_site, tmp_path):
    home = tmp_path / "home"
    user = sim_site["ssh_user"]
    folder = f"orch-user-{uuid.uuid4().hex[:8]}"
    where = f"{sim_site['work_dir']}/{folder}"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "user", "-i", str(sim_site.directory / "site.yaml"),
                    "--set", f"login_token={sim_site['ssh_key_file']}", "--set", f"folder={folder}")
    try:
        assert deployed.returncode == 0, deployed.stderr
        outputs = json.loads(orch(home, "outputs", "user", "--json").stdout)
        assert outputs["login_user"] == user
        # the folder and file the playbook made, owned by the user (not root)
        owners = sim_site.ssh("login", f"stat -c '%U:%G %u' {where} {outputs['file_path']}").stdout.splitlines()
        assert owners == [f"{user}:{user} 3213"] * 2
        # the Slurm job ran with the user's uid, and its output file is the user's
        uid, name = outputs["job_output"].split()
        assert (uid, name) == ("3213", user)
        assert outputs["job_output_owner"] == user
        job = outputs["job_id"]
        assert sim_site.ssh("login", f"squeue -h -t all -j {job} -o %u").stdout.strip() == user
        assert f"UserId={user}(3213)" in sim_site.ssh("login", f"scontrol show job {job}").stdout
        undeployed = orch(home, "undeploy", "user")
        assert undeployed.returncode == 0, undeployed.stderr
        assert sim_site.ssh("login", f"test -e {outputs['file_path']}").returncode == 1
    finally:
        sim_site.ssh("login", f"rm -rf {where}")
