"""A key reaches Ansible only for the batch that needs it: a Compute whose endpoint credential is
`token_type: orch_credential, token: <name>` is deployed onto a throwaway sshd over real SSH, and
afterwards no file under $ORCH_HOME but master.key holds the key.

Skipped until the executor knows orch credentials (Target.key_credential, see the report that came
with orchestrator/credentials), and without root or sshd."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from leaks import files_containing, leak_needles
from throwaway_sshd import running_sshd, unavailable_reason

from orchestrator.credentials import CredentialStore
from orchestrator.executors.ansible import Target

DATA = Path(__file__).parent / "data"

pytestmark = [
    pytest.mark.skipif("key_credential" not in {f.name for f in dataclasses.fields(Target)},
                       reason="the executor does not hand orch credentials to Ansible yet (Target.key_credential)"),
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]


@pytest.fixture
def server(tmp_path: Path):
    # Not 127.0.0.1: the executor treats that as this machine and would not use SSH at all.
    with running_sshd(tmp_path / "sshd", address="127.0.0.2") as sshd:
        yield sshd


def deploy(home: Path, name: str, inputs: dict):
    from orchestrator.api import Orchestrator

    orch = Orchestrator(home, workers=2)
    try:
        return orch.deploy(name, str(DATA / "handover.yaml"), inputs), orch.outputs(name)
    finally:
        orch.close()


def test_deploy_over_ssh_with_an_orch_credential(store: CredentialStore, home: Path, server) -> None:
    server.authorized_keys.write_text(store.create("cluster") + "\n")
    result, outputs = deploy(home, "handover", {"address": server.address, "port": server.port,
                                                "known_hosts_file": str(server.known_hosts),
                                                "credential_name": "cluster"})
    assert result.outcome.ok, result.outcome.failures
    assert outputs["user_seen"] == "root"
    # a playbook on the orchestrator that reaches the host with add_host gets the key through ORCH_HOSTS
    assert outputs["relayed_user_seen"] == "root"
    assert list((home / "run-keys").iterdir()) == []
    assert files_containing(home, leak_needles(store.private_key("cluster")), skip={"master.key"}) == []


def test_unknown_credential_fails_the_operation_with_a_sentence(store: CredentialStore, home: Path,
                                                                server) -> None:
    store.create("cluster")
    result, _ = deploy(home, "handover", {"address": server.address, "port": server.port,
                                          "known_hosts_file": str(server.known_hosts),
                                          "credential_name": "nope"})
    assert not result.outcome.ok
    assert "no credential named 'nope'" in " ".join(str(f) for f in result.outcome.failures)
