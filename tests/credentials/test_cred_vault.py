"""The Vault backend (KV v2 through hvac) against VaultTestDouble, the local stand-in in
vault_double.py - a test double, not Vault."""

from __future__ import annotations

import builtins
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from vault_double import VaultTestDouble

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

pytest.importorskip("hvac")


def test_create_writes_private_and_public_key_to_vault(vault_store: CredentialStore, vault: VaultTestDouble,
                                                       home: Path) -> None:
    public = vault_store.create("cluster", user="alice")
    serialization.load_ssh_public_key(public.encode())
    stored = vault.secrets["orch/credentials/cluster"].data
    assert stored["public_key"] == public and stored["user"] == "alice"
    assert stored["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert vault_store.private_key("cluster") == stored["private_key"].encode()
    assert vault_store.verify("cluster")
    assert not (home / "master.key").exists() and not (home / "credentials").exists()  # nothing local


def test_list_get_delete(vault_store: CredentialStore, vault: VaultTestDouble) -> None:
    vault_store.create("b")
    vault_store.create("a", comment="x")
    vault.secrets["orch/credentials/sub/deeper"] = vault.secrets["orch/credentials/a"]  # a folder: not listed
    assert [c.name for c in vault_store.list()] == ["a", "b"]
    assert vault_store.get("a").comment == "x"
    vault_store.delete("a")
    assert "orch/credentials/a" not in vault.secrets
    assert ("DELETE", "/v1/secret/metadata/orch/credentials/a") in vault.requests
    assert [c.name for c in vault_store.list()] == ["b"]


def test_list_when_nothing_was_written(vault_store: CredentialStore) -> None:
    assert vault_store.list() == []


def test_duplicate_and_unknown(vault_store: CredentialStore) -> None:
    vault_store.create("cluster")
    with pytest.raises(CredentialExists, match="already exists"):
        vault_store.create("cluster")
    for call in (vault_store.delete, vault_store.private_key, vault_store.get):
        with pytest.raises(UnknownCredential, match="no credential named 'nope'"):
            call("nope")


def test_check_and_set_stops_a_concurrent_create(vault_store: CredentialStore, vault: VaultTestDouble,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    winner = vault_store.create("cluster")
    # As if another process wrote between our existence check and our write.
    monkeypatch.setattr(vault_store.backend, "_read", lambda name: None)
    with pytest.raises(CredentialExists):
        vault_store.create("cluster")
    assert vault.secrets["orch/credentials/cluster"].data["public_key"] == winner
    assert vault.secrets["orch/credentials/cluster"].version == 1


def test_mount_and_prefix_are_settable(home: Path) -> None:
    with VaultTestDouble(token="t", mount="kv") as double:
        store = CredentialStore(home, VaultBackend(VaultConfig(double.address, "t", mount="kv", prefix="hpc/keys")))
        store.create("cluster")
        assert list(double.secrets) == ["hpc/keys/cluster"]
        assert [c.name for c in store.list()] == ["cluster"]


def test_key_file_from_vault(vault_store: CredentialStore, home: Path) -> None:
    vault_store.create("cluster")
    with vault_store.key_file("cluster") as path:
        assert path.read_bytes() == vault_store.private_key("cluster")
        assert path.stat().st_mode & 0o777 == 0o600
    assert not path.exists() and not path.parent.exists()


def test_wrong_token_is_a_clear_error(home: Path, vault: VaultTestDouble) -> None:
    store = CredentialStore(home, VaultBackend(VaultConfig(vault.address, "wrong-token")))
    with pytest.raises(CredentialError, match="refused the token") as info:
        store.create("cluster")
    assert "wrong-token" not in str(info.value)


def test_unreachable_vault_is_a_clear_error(home: Path) -> None:
    with VaultTestDouble(token="t") as double:
        address = double.address
    store = CredentialStore(home, VaultBackend(VaultConfig(address, "t", timeout=2)))
    with pytest.raises(CredentialError, match="cannot reach Vault"):
        store.list()


def test_missing_hvac_is_a_clear_error(home: Path, vault: VaultTestDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_hvac(name, *args, **kwargs):
        if name == "hvac" or name.startswith("hvac."):
            raise ImportError("No module named 'hvac'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "hvac", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_hvac)
    store = CredentialStore(home, VaultBackend(VaultConfig(vault.address, vault.token)))
    with pytest.raises(CredentialError, match="'hvac' is not installed"):
        store.list()


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


def test_cli_with_vault_from_env(home: Path, vault: VaultTestDouble, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(vault.token)
    env = {"ORCH_VAULT_ADDR": vault.address, "ORCH_VAULT_TOKEN_FILE": str(token_file)}
    runner = CliRunner()
    created = runner.invoke(credentials, ["create", "cluster"], obj={"home": home}, env=env)
    assert created.exit_code == 0, created.output
    assert "vault (" in created.stderr
    listed = runner.invoke(credentials, ["list", "--json"], obj={"home": home}, env=env)
    assert [c["name"] for c in json.loads(listed.stdout)] == ["cluster"]
    assert "orch/credentials/cluster" in vault.secrets
    dup = runner.invoke(credentials, ["create", "cluster"], obj={"home": home}, env=env)
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    bad = runner.invoke(credentials, ["list"], obj={"home": home}, env={**env, "ORCH_VAULT_TOKEN": "nope"})
    assert bad.exit_code == 2 and "refused the token" in bad.stderr and "Traceback" not in bad.output
