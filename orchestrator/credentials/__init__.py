"""Credential management: SSH key pairs made by orch, private keys encrypted at rest (or kept in
Vault), handed to Ansible only as a short-lived 0600 file for the operation that needs one."""

from orchestrator.credentials.errors import (
    CredentialError,
    CredentialExists,
    UnknownCredential,
    validate_name,
)
from orchestrator.credentials.record import Credential
from orchestrator.credentials.store import CredentialStore
from orchestrator.credentials.vault import VaultBackend, VaultConfig

__all__ = ["Credential", "CredentialError", "CredentialExists", "CredentialStore", "UnknownCredential",
           "VaultBackend", "VaultConfig", "validate_name"]
