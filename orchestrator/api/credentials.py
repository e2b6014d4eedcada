"""SSH credentials: key pairs orch makes and keeps encrypted (locally or in Vault), used to reach the cluster."""

from __future__ import annotations

from orchestrator.api.core import Core
from orchestrator.api.records import CreatedCredential, Credential, DeletedCredential
from orchestrator.credentials import CredentialError, CredentialStore, UnknownCredential


class Credentials(Core):
    def _credentials(self) -> CredentialStore:
        return CredentialStore(self.home)

    def create_credential(self, name: str, *, comment: str | None = None, user: str | None = None) -> CreatedCredential:
        store = self._credentials()
        store.create(name, comment=comment, user=user)
        return CreatedCredential(store.get(name), store.backend.describe())

    def credentials(self) -> list[Credential]:
        return self._credentials().list()

    def credential(self, name: str) -> Credential:
        return self._credentials().get(name)

    def verify_credential(self, name: str) -> Credential:
        """Decrypt the private key and check that it matches the public key."""
        return self._credentials().verify(name)

    def delete_credential(self, name: str) -> DeletedCredential:
        """Delete from orch's store only: the public key stays on the cluster wherever it was added."""
        store = self._credentials()
        try:
            credential: Credential | None = store.get(name)
        except UnknownCredential:
            raise
        except CredentialError:
            credential = None  # a damaged record is still deleted; its key line is unknown
        store.delete(name)
        return DeletedCredential(name, credential, store.backend.describe())
