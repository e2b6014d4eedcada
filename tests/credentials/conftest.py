"""Fixtures for the credential tests: a fresh $ORCH_HOME, no Vault settings leaking in from the
environment, and the Vault test double (tests/credentials/vault_double.py) when a test asks for it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from vault_double import VaultTestDouble

from orchestrator.credentials import CredentialStore, VaultBackend, VaultConfig


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ORCH_HOME", "ORCH_VAULT_ADDR", "ORCH_VAULT_TOKEN", "ORCH_VAULT_TOKEN_FILE", "ORCH_VAULT_MOUNT",
                 "ORCH_VAULT_PREFIX", "ORCH_VAULT_CACERT", "VAULT_TOKEN", "VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    # A proxy from the environment must not intercept requests to the double on 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    # ~/.vault-token of whoever runs the tests must not be picked up.
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "orch-home"  # not created: the store must make it


@pytest.fixture
def store(home: Path) -> CredentialStore:
    return CredentialStore(home)


@pytest.fixture
def vault():
    with VaultTestDouble(token="test-token-" + secrets.token_hex(8)) as double:
        yield double


@pytest.fixture
def vault_store(home: Path, vault: VaultTestDouble) -> CredentialStore:
    return CredentialStore(home, VaultBackend(VaultConfig(vault.address, vault.token)))
