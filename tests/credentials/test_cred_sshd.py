"""The key orch made really authenticates: a throwaway sshd on 127.0.0.1 (its own host key, an exact
known_hosts, the credential's public key as the only authorized key) accepts the file from
key_file() and refuses another credential's. Needs root and /usr/sbin/sshd; skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from throwaway_sshd import running_sshd, ssh, unavailable_reason

from orchestrator.credentials import CredentialStore

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def test_the_private_key_authenticates_over_ssh(store: CredentialStore, tmp_path: Path) -> None:
    public = store.create("cluster")
    store.create("stranger")
    with running_sshd(tmp_path / "sshd") as server:
        server.authorized_keys.write_text(public + "\n")

        with store.key_file("cluster") as key:
            accepted = ssh(server, key)
        assert accepted.returncode == 0, accepted.stderr
        assert not key.exists()

        with store.key_file("stranger") as other:
            refused = ssh(server, other)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
