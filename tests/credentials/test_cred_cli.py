"""`orch credentials ...`: the click group through CliRunner, and the real `orch` process.

Process tests run two ways: `python -m orchestrator.cli` (skipped until orchestrator/cli.py registers
the group), and the same `orchestrator.cli.main()` with the group added in that process, so exit
codes and error handling are those of the real entry point either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from orchestrator.cli.credentials import credentials
from orchestrator.credentials import CredentialStore

REPO = Path(__file__).resolve().parents[2]

_ADD_GROUP = ("import sys; from orchestrator.cli import cli, main; "
              "from orchestrator.cli.credentials import credentials; "
              "'credentials' in cli.commands or cli.add_command(credentials); main(sys.argv[1:])")


def _registered() -> bool:
    from orchestrator.cli import cli

    return "credentials" in cli.commands


ENTRY_POINTS = [
    pytest.param(["-m", "orchestrator.cli"], id="orch", marks=pytest.mark.skipif(
        not _registered(), reason="orchestrator/cli.py does not register the credentials group yet")),
    pytest.param(["-c", _ADD_GROUP], id="main-with-group"),
]


@pytest.fixture(params=ENTRY_POINTS)
def orch(request, home: Path):
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *request.param, "--home", str(home), "credentials", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, **(env or {})}, check=False)

    return run


def invoke(home: Path, *args: str, env: dict[str, str] | None = None):
    """The group with `home` as `orch --home` would pass it (click >= 8.2 keeps stdout and stderr apart)."""
    return CliRunner().invoke(credentials, list(args), obj={"home": home}, env=env)


# -- CliRunner on the group --------------------------------------------------------------------------

def test_create_prints_the_public_key_only_on_stdout(home: Path) -> None:
    result = invoke(home, "create", "cluster", "--comment", "me@laptop")
    assert result.exit_code == 0, result.output
    public = result.stdout.strip()
    assert "\n" not in public and public.endswith(" me@laptop")
    serialization.load_ssh_public_key(public.encode())
    assert "authorized_keys" in result.stderr and "SHA256:" in result.stderr


def test_list_show_verify_delete(home: Path) -> None:
    public = invoke(home, "create", "cluster", "--user", "alice").stdout.strip()
    assert invoke(home, "create", "other").exit_code == 0
    listed = json.loads(invoke(home, "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["cluster", "other"]
    assert listed[0]["user"] == "alice" and listed[0]["type"] == "ssh-ed25519"
    assert listed[0]["fingerprint"] == CredentialStore(home).get("cluster").fingerprint
    assert all(set(c) == {"name", "type", "public_key", "fingerprint", "created", "comment", "user"} for c in listed)
    table = invoke(home, "list")
    assert table.exit_code == 0 and "cluster" in table.stdout and "ssh-ed25519" in table.stdout
    assert invoke(home, "show", "cluster").stdout.strip() == public
    assert "usable" in invoke(home, "verify", "cluster").stdout
    assert invoke(home, "delete", "cluster").exit_code == 0
    assert [c["name"] for c in json.loads(invoke(home, "list", "--json").stdout)] == ["other"]


def test_create_says_where_the_public_key_must_go(home: Path) -> None:
    for_alice = invoke(home, "create", "cluster", "--user", "alice")
    assert for_alice.exit_code == 0, for_alice.output
    assert "add the public key above, as one line, to ~/.ssh/authorized_keys of user 'alice' on the cluster" \
        in for_alice.stderr
    anyone = invoke(home, "create", "other")
    assert "to ~/.ssh/authorized_keys of the user orch logs in as on the cluster" in anyone.stderr
    assert "~/.ssh/authorized_keys" not in anyone.stdout  # stdout stays the key line only


def test_delete_says_what_it_removed_and_what_is_left_on_the_cluster(home: Path) -> None:
    public = invoke(home, "create", "cluster", "--user", "alice").stdout.strip()
    fingerprint = CredentialStore(home).get("cluster").fingerprint
    deleted = invoke(home, "delete", "cluster")
    assert deleted.exit_code == 0, deleted.output
    # The key line, alone on stdout, to find it in authorized_keys (grep -xF).
    assert deleted.stdout == public + "\n"
    assert f"deleted 'cluster' ({fingerprint}) from orch's store, local ({home / 'credentials'})" in deleted.stderr
    assert "orch did not touch the cluster" in deleted.stderr
    assert "stays in ~/.ssh/authorized_keys of user 'alice'" in deleted.stderr
    assert "remove that line there" in deleted.stderr
    assert "from the cluster too" not in deleted.stderr and "removed from the cluster" not in deleted.stderr
    assert json.loads(invoke(home, "list", "--json").stdout) == []


def test_delete_of_a_damaged_record_still_deletes_it_and_says_so(home: Path) -> None:
    assert invoke(home, "create", "cluster").exit_code == 0
    (home / "credentials" / "cluster.json").write_text("{}")
    deleted = invoke(home, "delete", "cluster")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout == ""
    assert "its public key could not be read" in deleted.stderr
    assert "remove the key's line from ~/.ssh/authorized_keys there yourself" in deleted.stderr
    assert not (home / "credentials" / "cluster.json").exists()


def test_list_when_empty(home: Path) -> None:
    assert invoke(home, "list").stdout.strip() == "no credentials"
    assert json.loads(invoke(home, "list", "--json").stdout) == []


@pytest.mark.parametrize("args, message", [
    (["create", "dup"], "'dup' already exists"),
    (["delete", "nope"], "no credential named 'nope'"),
    (["show", "nope"], "no credential named 'nope'"),
    (["verify", "nope"], "no credential named 'nope'"),
    (["create", "../etc"], "invalid credential name"),
])
def test_errors_exit_2_in_one_line(home: Path, args: list[str], message: str) -> None:
    invoke(home, "create", "dup")
    result = invoke(home, *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output and result.stdout == ""


# -- the real process --------------------------------------------------------------------------------

def test_process_create_list_delete(orch, home: Path) -> None:
    created = orch("create", "cluster", "--comment", "c1")
    assert created.returncode == 0, created.stderr
    public = created.stdout.strip()
    serialization.load_ssh_public_key(public.encode())
    listed = orch("list", "--json")
    assert listed.returncode == 0
    assert [(c["name"], c["public_key"]) for c in json.loads(listed.stdout)] == [("cluster", public)]
    assert CredentialStore(home).verify("cluster")
    assert "to ~/.ssh/authorized_keys of the user orch logs in as on the cluster" in created.stderr
    deleted = orch("delete", "cluster")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == public
    assert "from orch's store" in deleted.stderr and "orch did not touch the cluster" in deleted.stderr
    assert json.loads(orch("list", "--json").stdout) == []


def test_process_errors_exit_2_without_traceback(orch, home: Path) -> None:
    assert orch("create", "cluster").returncode == 0
    for args, message in ((["create", "cluster"], "already exists"), (["delete", "nope"], "no credential named"),
                          (["create", "a/b"], "invalid credential name")):
        result = orch(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_process_wrong_master_key(orch, home: Path) -> None:
    assert orch("create", "cluster").returncode == 0
    (home / "master.key").unlink()
    orch("create", "another")  # makes a new, different master key
    result = orch("verify", "cluster")
    assert result.returncode == 2
    assert "cannot decrypt credential 'cluster'" in result.stderr and "master key" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
