"""Secrets hygiene: a private key or the master key never reaches a file other than master.key (the
stored file holds ciphertext only), a repr(), a log record, an exception, a command line or the
CLI's output. With Vault (a real OpenBao dev server, conftest's `bao`), neither the private key nor the
Vault token does."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from bao_server import BaoServer, KvMount
from click.testing import CliRunner
from leaks import files_containing, leak_needles

from orchestrator.cli.credentials import credentials
from orchestrator.credentials import CredentialError, CredentialStore, masterkey, sshkey

REPO = Path(__file__).resolve().parents[2]


def master_needles(home: Path) -> list[bytes]:
    text = (home / "master.key").read_bytes().strip()
    return [text, base64.b64decode(text), base64.b64decode(text).hex().encode()]


def test_no_file_but_master_key_holds_the_private_key(store: CredentialStore, home: Path) -> None:
    store.create("a")
    store.create("b", user="alice")
    with store.key_file("a"):
        pass
    store.list()
    for name in ("a", "b"):
        needles = leak_needles(store.private_key(name))
        assert files_containing(home, needles, skip={"master.key"}) == []
    assert files_containing(home, master_needles(home), skip={"master.key"}) == []


ADD_GROUP = ("import sys; from orchestrator.cli import cli, main; "
             "from orchestrator.cli.credentials import credentials; "
             "'credentials' in cli.commands or cli.add_command(credentials); main(sys.argv[1:])")


def test_no_file_holds_the_private_key_after_cli_use(home: Path) -> None:
    """Through the real entry point in a separate process, so whatever it writes is on disk to search."""
    add_group = ADD_GROUP
    for args in (["create", "cluster"], ["list"], ["list", "--json"], ["verify", "cluster"], ["show", "cluster"]):
        result = subprocess.run([sys.executable, "-c", add_group, "--home", str(home), "credentials", *args],
                                capture_output=True, cwd=REPO, timeout=60, check=True)
        needles = leak_needles(CredentialStore(home).private_key("cluster")) + master_needles(home)
        assert not any(n in result.stdout or n in result.stderr for n in needles), args
    needles = leak_needles(CredentialStore(home).private_key("cluster"))
    assert files_containing(home, needles, skip={"master.key"}) == []


def test_reprs_hold_no_secret(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    pem = store.private_key("cluster")
    key = masterkey.load(home)
    pair = sshkey.generate("x")
    texts = [repr(store), str(store), repr(store.backend), repr(key), repr(store.get("cluster")), repr(store.list())]
    needles = leak_needles(pem) + master_needles(home)
    assert not any(n.decode("latin-1") in t for t in texts for n in needles)
    assert pair.private_pem.decode() not in repr(pair) and "private_pem" not in repr(pair)
    assert "key=" not in repr(key)


def test_vault_reprs_hold_no_token(vault_store: CredentialStore, vault: KvMount) -> None:
    vault_store.create("cluster")
    for text in (repr(vault_store), repr(vault_store.backend), repr(vault_store.backend.config)):
        assert vault.token not in text
        assert "PRIVATE" not in text


def test_logs_hold_no_secret(store: CredentialStore, home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store.create("cluster")
    with store.key_file("cluster"):
        pass
    store.secret("cluster")
    store.list()
    needles = leak_needles(store.private_key("cluster")) + master_needles(home)
    assert not any(n.decode("latin-1") in caplog.text for n in needles)


def test_vault_logs_hold_no_secret_or_token(vault_store: CredentialStore, vault: KvMount,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 and hvac log requests at DEBUG
    vault_store.create("cluster")
    vault_store.list()
    pem = vault_store.private_key("cluster")
    assert caplog.records, "expected urllib3 debug records to search"
    assert vault.token not in caplog.text
    assert not any(n.decode("latin-1") in caplog.text for n in leak_needles(pem))


def test_vault_cli_output_holds_no_secret_or_token(home: Path, vault: KvMount, tmp_path: Path) -> None:
    """The real entry point in a process of its own, the token in its environment (never its arguments)."""
    env = {**os.environ, "ORCH_VAULT_ADDR": vault.address, "ORCH_VAULT_TOKEN": vault.token,
           "ORCH_VAULT_MOUNT": vault.mount}
    outputs = []
    for args in (["create", "cluster"], ["list"], ["list", "--json"], ["verify", "cluster"], ["show", "cluster"]):
        result = subprocess.run([sys.executable, "-c", ADD_GROUP, "--home", str(home), "credentials", *args],
                                capture_output=True, cwd=REPO, env=env, timeout=60)
        assert result.returncode == 0, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
    pem = vault.read("orch/credentials/cluster")["private_key"].encode()
    for output in outputs:
        assert vault.token.encode() not in output
        assert not any(n in output for n in leak_needles(pem))
    assert not home.exists() or files_containing(home, [*leak_needles(pem), vault.token.encode()]) == []


def test_vault_operations_start_no_process(vault_store: CredentialStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """hvac talks HTTP from this process: no command line can carry the token or the key."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[:1]}")

    for name in ("execv", "execve", "execvp", "execvpe", "posix_spawn", "posix_spawnp", "fork", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    vault_store.create("cluster")
    vault_store.verify("cluster")
    with vault_store.key_file("cluster"):
        pass
    vault_store.list()
    vault_store.delete("cluster")


def test_the_test_server_keeps_its_token_off_its_command_line_and_log(bao: BaoServer, vault: KvMount,
                                                                      vault_store: CredentialStore) -> None:
    """The OpenBao dev server the tests start: its root token goes through the environment, and its output
    (which prints the token at start) reaches server.log without it."""
    vault_store.create("cluster")
    pem = vault_store.private_key("cluster")
    cmdline = Path(f"/proc/{bao.pid}/cmdline").read_bytes()
    assert b"server\0-dev\0" in cmdline  # the right process
    assert bao.root_token.encode() not in cmdline and vault.token.encode() not in cmdline
    log = bao.log_text()
    assert "Root Token: (left out" in log  # the banner was seen, and its token line dropped
    for secret in (bao.root_token, vault.token, *(n.decode("latin-1") for n in leak_needles(pem))):
        assert secret not in log
    assert list((bao.log.parent / "home").iterdir()) == []  # -dev-no-store-token: no ~/.vault-token


def test_decryption_error_holds_no_secret(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    old_master = master_needles(home)
    document = json.loads((home / "credentials" / "cluster.json").read_text())
    (home / "master.key").unlink()
    masterkey.load_or_create(home)
    with pytest.raises(CredentialError) as info:
        store.private_key("cluster")
    rendered = "".join(traceback.format_exception(info.value))
    for secret in old_master + master_needles(home) + [document["ciphertext"].encode()]:
        assert secret.decode("latin-1") not in rendered
    assert "cannot decrypt credential 'cluster'" in rendered
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_wrong_master_key_in_the_cli_is_one_line(home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(credentials, ["create", "cluster"], obj={"home": home}).exit_code == 0
    (home / "master.key").unlink()
    masterkey.load_or_create(home)
    result = runner.invoke(credentials, ["verify", "cluster"], obj={"home": home})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot decrypt credential 'cluster'")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_no_process_is_started_with_key_material(store: CredentialStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key generation, encryption and key_file() run in this process: nothing is spawned, so no key
    or master key can be on any command line."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[:1]}")

    for name in ("execv", "execve", "execvp", "execvpe", "posix_spawn", "posix_spawnp", "fork", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    store.create("cluster")
    store.verify("cluster")
    with store.key_file("cluster"):
        pass
    store.delete("cluster")


def test_key_file_holds_the_key_only_while_in_use(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    needles = leak_needles(store.private_key("cluster"))
    with store.key_file("cluster") as path:
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        hits = files_containing(home, needles, skip={"master.key"})
        assert hits and all(hit.startswith(f"{path}: ") for hit in hits)  # that file, and only it
    assert files_containing(home, needles, skip={"master.key"}) == []
