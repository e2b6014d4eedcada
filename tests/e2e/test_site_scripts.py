"""Bash and Python implementations on hosts of the simulated site: run over SSH as the site's unprivileged
cluster user, on the operation's own host (a Bash create on the login host, a Python configure on the data
host by its configured interpreter), values byte for byte, outputs back, nothing left behind."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "site-scripts.yaml"

pytestmark = pytest.mark.e2e
STRACE = shutil.which("strace")


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, stdin=subprocess.DEVNULL,
                          check=False)


def test_bash_and_python_operations_run_on_site_hosts_as_the_cluster_user(sim_site, tmp_path):
    home = tmp_path / "home"
    user = sim_site["ssh_user"]
    folder = f"orch-scripts-{uuid.uuid4().hex[:8]}"
    marker = f"/tmp/{folder}-marker"
    content = f"it's \"$(touch {marker})\" `touch {marker}`\nline two\t{{{{ 1 + 1 }}}} $HOME "
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(yaml.safe_dump({"folder": folder, "content": content}), encoding="utf-8")
    written = f"{sim_site['work_dir']}/{folder}/written-by-bash.txt"
    report_path = f"{sim_site['data_dir']}/{folder}/report.json"
    login_name = sim_site.ssh("login", "hostname").stdout.strip()
    data_name = sim_site.ssh("data", "hostname").stdout.strip()
    try:
        deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "scripts", "-i", str(sim_site.directory / "site.yaml"),
                        "-i", str(inputs))
        assert deployed.returncode == 0, deployed.stderr

        # the Bash create ran on the login host as the cluster user, and wrote the input byte for byte
        outputs = json.loads(orch(home, "outputs", "scripts", "--json").stdout)
        assert outputs["who"] == user and outputs["where"] == login_name
        on_login = sim_site.ssh("login", f"cat {shlex.quote(written)}; stat -c '%U' {shlex.quote(written)}")
        assert on_login.stdout == content + user + "\n"

        # the Python configure ran on the data host, by its configured interpreter, with the Bash
        # operation's outputs as its inputs
        assert outputs["report_path"] == report_path
        report = json.loads(sim_site.ssh("data", f"cat {shlex.quote(report_path)}").stdout)
        assert report["host"] == data_name and report["uid"] == 3213
        assert report["executable"] == "/usr/bin/python3"
        seen = report["environ"]
        assert seen["file_writer"] == user and seen["file_host"] == login_name and seen["content"] == content
        assert (seen["NODE"], seen["HOST"], seen["DEPLOYMENT_ID"]) == ("report", "data", "scripts")

        for host in ("login", "data"):  # a value ran nowhere; the scripts' folders went with them
            assert sim_site.ssh(host, f"test -e {marker}").returncode == 1
            left = sim_site.ssh(host, "ls -A ~/.ansible/tmp 2>/dev/null").stdout.split()
            assert left == [], f"left on {host}: {left}"

        undeployed = orch(home, "undeploy", "scripts")
        assert undeployed.returncode == 0, undeployed.stderr
        assert sim_site.ssh("login", f"test -e {shlex.quote(written)}").returncode == 1
    finally:
        sim_site.ssh("login", f"rm -rf {shlex.quote(sim_site['work_dir'] + '/' + folder)}")
        sim_site.ssh("data", f"rm -rf {shlex.quote(sim_site['data_dir'] + '/' + folder)}")


def test_a_scripts_values_are_on_no_command_line(sim_site, tmp_path):
    """Ansible's `environment:` would have put them on ssh's command line (and the remote shell's): the
    script playbook sends them as module arguments, on the connection's stdin."""
    if not STRACE:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("strace is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("strace is not installed")
    home = tmp_path / "home"
    folder = f"orch-scripts-{uuid.uuid4().hex[:8]}"
    token = f"value-{uuid.uuid4().hex}"
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(yaml.safe_dump({"folder": folder, "content": token}), encoding="utf-8")
    trace = tmp_path / "execve.txt"
    try:
        deployed = subprocess.run(
            [STRACE, "-f", "-qq", "-e", "trace=execve", "-s", "65536", "-o", str(trace), sys.executable, "-m",
             "orchestrator.cli", "--home", str(home), "deploy", str(TOPOLOGY), "-n", "scripts", "-i",
             str(sim_site.directory / "site.yaml"), "-i", str(inputs)],
            capture_output=True, text=True, timeout=600, cwd=ROOT, stdin=subprocess.DEVNULL, check=False)
        assert deployed.returncode == 0, deployed.stderr
        text = trace.read_text(errors="replace")
        assert 'execve("/usr/bin/ssh"' in text, "the trace saw no ssh: it proves nothing"
        assert token not in text
        # and the value did reach the host
        written = f"{sim_site['work_dir']}/{folder}/written-by-bash.txt"
        assert sim_site.ssh("login", f"cat {shlex.quote(written)}").stdout == token
    finally:
        sim_site.ssh("login", f"rm -rf {shlex.quote(sim_site['work_dir'] + '/' + folder)}")
        sim_site.ssh("data", f"rm -rf {shlex.quote(sim_site['data_dir'] + '/' + folder)}")
