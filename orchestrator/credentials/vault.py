"""The optional HashiCorp Vault backend (KV version 2) through hvac, used when ORCH_VAULT_ADDR is set.

Each credential is one secret at <mount>/<prefix>/<name> holding the public fields and the private
key; Vault encrypts it at rest and controls who reads it, so no master key is involved. hvac is
imported only when Vault is actually used: orch works without it.

Settings: ORCH_VAULT_ADDR; the token from ORCH_VAULT_TOKEN, else the file ORCH_VAULT_TOKEN_FILE, else
~/.vault-token (where `vault login` puts it); ORCH_VAULT_MOUNT (default "secret"), ORCH_VAULT_PREFIX
(default "orch/credentials"), ORCH_VAULT_CACERT (a CA bundle for TLS).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.credentials.errors import CredentialError, CredentialExists, UnknownCredential
from orchestrator.credentials.record import Credential

FORMAT = "orch-credential/1"
DEFAULT_MOUNT = "secret"
DEFAULT_PREFIX = "orch/credentials"


@dataclass(frozen=True)
class VaultConfig:
    address: str
    token: str = field(repr=False)
    mount: str = DEFAULT_MOUNT
    prefix: str = DEFAULT_PREFIX
    ca_cert: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultConfig | None:
        """The configuration from ORCH_VAULT_* variables, or None when ORCH_VAULT_ADDR is not set."""
        env = os.environ if environ is None else environ
        address = env.get("ORCH_VAULT_ADDR", "").strip()
        if not address:
            return None
        return cls(address=address, token=_token(env), mount=env.get("ORCH_VAULT_MOUNT", DEFAULT_MOUNT).strip("/"),
                   prefix=env.get("ORCH_VAULT_PREFIX", DEFAULT_PREFIX).strip("/"),
                   ca_cert=env.get("ORCH_VAULT_CACERT") or None)


def _token(env: Mapping[str, str]) -> str:
    if env.get("ORCH_VAULT_TOKEN"):
        return env["ORCH_VAULT_TOKEN"].strip()
    path = Path(env.get("ORCH_VAULT_TOKEN_FILE") or Path.home() / ".vault-token").expanduser()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError:
        token = ""
    if not token:
        raise CredentialError(f"ORCH_VAULT_ADDR is set but there is no Vault token: set ORCH_VAULT_TOKEN or "
                              f"ORCH_VAULT_TOKEN_FILE (no token in {path})")
    return token


class VaultBackend:
    def __init__(self, config: VaultConfig):
        self.config = config
        self._client: Any = None
        self._hvac: Any = None

    def __repr__(self) -> str:
        return f"VaultBackend({self.describe()!r})"

    def describe(self) -> str:
        where = f"{self.config.mount}/{self.config.prefix}".rstrip("/")
        return f"vault ({self.config.address}, {where})"

    # -- the backend interface --------------------------------------------------------------------

    def add(self, credential: Credential, private_pem: bytes) -> None:
        name = credential.name
        if self._read(name) is not None:
            raise CredentialExists(f"a credential named '{name}' already exists (in {self.describe()})")
        secret = {"format": FORMAT, **credential.as_dict(), "private_key": private_pem.decode("ascii")}
        kv = self._kv()
        with self._errors(f"writing '{name}'"):
            try:
                # cas=0: written only if nothing is there, so two concurrent creators cannot both win.
                kv.create_or_update_secret(path=self._path(name), secret=secret, cas=0,
                                           mount_point=self.config.mount)
            except self._hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" not in str(exc):
                    raise
                raise CredentialExists(f"a credential named '{name}' already exists (in {self.describe()}; "
                                       "a deleted version of it may remain in its metadata)") from None

    def get(self, name: str) -> Credential:
        return self._credential(name, self._existing(name))

    def private_key(self, name: str) -> bytes:
        secret = self._existing(name)
        if not isinstance(secret.get("private_key"), str):
            raise CredentialError(f"the Vault secret of '{name}' has no private key")
        return secret["private_key"].encode("ascii")

    def list(self) -> list[Credential]:
        kv = self._kv()
        with self._errors("listing credentials"):
            try:
                response = kv.list_secrets(path=self.config.prefix, mount_point=self.config.mount)
            except self._hvac.exceptions.InvalidPath:
                return []  # nothing written under the prefix yet
        keys = (response.get("data") or {}).get("keys") or []
        found = []
        for key in sorted(k for k in keys if isinstance(k, str) and not k.endswith("/")):
            secret = self._read(key)
            if secret is not None:  # a secret whose latest version was deleted outside orch
                found.append(self._credential(key, secret))
        return found

    def delete(self, name: str) -> None:
        self._existing(name)
        kv = self._kv()
        with self._errors(f"deleting '{name}'"):
            kv.delete_metadata_and_all_versions(path=self._path(name), mount_point=self.config.mount)

    # -- internals --------------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return f"{self.config.prefix}/{name}" if self.config.prefix else name

    def _kv(self) -> Any:
        if self._client is None:
            try:
                import hvac  # optional: only Vault users need it
            except ImportError:
                raise CredentialError("ORCH_VAULT_ADDR is set but the Python package 'hvac' is not installed "
                                      "(pip install hvac)") from None
            self._hvac = hvac
            self._client = hvac.Client(url=self.config.address, token=self.config.token,
                                       verify=self.config.ca_cert, timeout=self.config.timeout)
        return self._client.secrets.kv.v2

    def _read(self, name: str) -> dict[str, Any] | None:
        kv = self._kv()
        with self._errors(f"reading '{name}'"):
            try:
                response = kv.read_secret_version(path=self._path(name), mount_point=self.config.mount,
                                                  raise_on_deleted_version=True)
            except self._hvac.exceptions.InvalidPath:
                return None
        secret = ((response or {}).get("data") or {}).get("data")
        if not isinstance(secret, dict):
            raise CredentialError(f"Vault returned no data for '{name}'")
        return secret

    def _existing(self, name: str) -> dict[str, Any]:
        secret = self._read(name)
        if secret is None:
            raise UnknownCredential(f"no credential named '{name}' (in {self.describe()})")
        return secret

    def _credential(self, name: str, secret: dict[str, Any]) -> Credential:
        if secret.get("format") != FORMAT:
            raise CredentialError(f"the Vault secret at {self.config.mount}/{self._path(name)} is not an orch "
                                  "credential")
        try:
            return Credential.from_dict({**secret, "name": name})
        except (KeyError, TypeError):
            raise CredentialError(f"the Vault secret of '{name}' is damaged (fields missing)") from None

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """hvac and requests errors as CredentialError: one sentence, no chained traceback. Vault's
        own messages are kept (they name paths and policies, never secret data)."""
        import requests  # hvac's own dependency, loaded by then

        exceptions = self._hvac.exceptions
        try:
            yield
        except (exceptions.Unauthorized, exceptions.Forbidden):
            raise CredentialError(f"Vault at {self.config.address} refused the token ({what}): check "
                                  "ORCH_VAULT_TOKEN and its policy") from None
        except exceptions.VaultError as exc:
            raise CredentialError(f"Vault at {self.config.address}: {what} failed: "
                                  f"{_short(str(exc)) or type(exc).__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise CredentialError(f"cannot reach Vault at {self.config.address} ({what}): "
                                  f"{type(exc).__name__}") from None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
