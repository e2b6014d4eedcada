"""`orch credentials` against the simulated site: the public key put where `create` says lets orch
log in (a deployment reaches the login host with the credential), and after `delete` the key line
it prints is the one still on the cluster, removed as its message says."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator.credentials import CredentialStore

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "site-user.yaml"

pytestmark = pytest.mark.e2e


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, stdin=subprocess.DEVNULL,
                          check=False)


def remote_path(path: str) -> str:
    """A path from orch's message for the remote shell: ~/ as $HOME/, the rest quoted."""
    assert path.startswith("~/"), path
    return '"$HOME"/' + shlex.quote(path[2:])


def direct_login(sim_site, key: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
         "-o", f"UserKnownHostsFile={sim_site['known_hosts_file']}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{sim_site['ssh_user']}@{sim_site['login_host']}",
         "id -un"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


def test_a_key_put_where_create_says_lets_orch_log_in(sim_site, tmp_path):
    home = tmp_path / "home"
    user = sim_site["ssh_user"]
    name = "reach-login"
    created = orch(home, "credentials", "create", name, "--user", user)
    assert created.returncode == 0, created.stderr
    public = created.stdout.strip()
    said = re.search(r"add the public key above, as one line, to (\S+) of user '([^']+)' on the cluster",
                     created.stderr)
    assert said, created.stderr
    path, account = said.groups()
    assert account == user
    authorized = remote_path(path)

    store = CredentialStore(home)
    with store.key_file(name) as key:
        refused = direct_login(sim_site, key)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr  # not authorized yet

    folder = f"orch-cred-{uuid.uuid4().hex[:8]}"
    added = sim_site.ssh("login", f"printf '%s\\n' {shlex.quote(public)} >> {authorized}")
    assert added.returncode == 0, added.stderr
    try:
        with store.key_file(name) as key:
            accepted = direct_login(sim_site, key)
        assert accepted.returncode == 0 and accepted.stdout.strip() == user, accepted.stderr

        # orch itself, with nothing but the credential's name in the topology
        deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "cred", "-i", str(sim_site.directory / "site.yaml"),
                        "--set", "login_token_type=orch_credential", "--set", f"login_token={name}",
                        "--set", f"folder={folder}")
        assert deployed.returncode == 0, deployed.stderr
        outputs = json.loads(orch(home, "outputs", "cred", "--json").stdout)
        assert outputs["login_user"] == user
        assert sim_site.ssh("login", f"stat -c %U {outputs['file_path']}").stdout.strip() == user

        # delete: the line it prints is the one on the cluster, still there until removed as it says
        deleted = orch(home, "credentials", "delete", name)
        assert deleted.returncode == 0, deleted.stderr
        line = deleted.stdout.strip()
        assert line == public and f"stays in {path} of user '{user}'" in deleted.stderr
        assert sim_site.ssh("login", f"grep -cxF {shlex.quote(line)} {authorized}").stdout.strip() == "1"
        removed = sim_site.ssh("login", f"grep -vxF {shlex.quote(line)} {authorized} > ~/.ak.new && "
                                        f"cat ~/.ak.new > {authorized} && rm ~/.ak.new")
        assert removed.returncode == 0, removed.stderr
        assert sim_site.ssh("login", f"grep -cxF {shlex.quote(line)} {authorized}").stdout.strip() == "0"
        assert sim_site.ssh("login", "true").returncode == 0  # the site's own key is still there
    finally:
        sim_site.ssh("login", f"grep -vxF {shlex.quote(public)} {authorized} > ~/.ak.new; "
                              f"cat ~/.ak.new > {authorized}; rm -f ~/.ak.new; rm -rf {sim_site['work_dir']}/{folder}")
