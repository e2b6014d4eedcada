"""The optional HashiCorp Vault backend (KV version 2) through hvac, used when ORCH_VAULT_ADDR is set.

Each credential is one secret at <mount>/<prefix>/<name> holding the public fields and the private
key; Vault encrypts it at rest and controls who reads it, so no master key is involved. hvac is
imported only when Vault is actually used: orch works without it.

Settings: ORCH_VAULT_ADDR; the token from ORCH_VAULT_TOKEN, else the file ORCH_VAULT_TOKEN_FILE, else
~/.vault-token (where `vault login` puts it); ORCH_VAULT_MOUNT (default "secret"), ORCH_VAULT_PREFIX
(default "orch/credentials"), ORCH_VAULT_CACERT (a CA bundle for TLS).

The mount must be a KV version 2 secrets engine (checked before the first request, where the token may
read the mount's description). What orch's token needs, and no more (tested against a real OpenBao):

    path "<mount>/data/<prefix>/*"     { capabilities = ["create", "read", "update"] }
    path "<mount>/metadata/<prefix>/*" { capabilities = ["list", "delete"] }

("update": a check-and-set write on a name that exists is an update Vault refuses with 400, which is
how a concurrent create is told apart; without it the loser would see "permission denied".)
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


class _DeletedInVault(CredentialError):
    """The name's metadata is in Vault but its latest version was deleted or destroyed outside orch
    (`kv delete`, `kv destroy`): not a credential to use, yet not absent either (a create would fail
    check-and-set), so only delete() accepts it."""


class VaultBackend:
    def __init__(self, config: VaultConfig):
        self.config = config
        self._client: Any = None
        self._hvac: Any = None
        self._mount_checked = False

    def __repr__(self) -> str:
        return f"VaultBackend({self.describe()!r})"

    def describe(self) -> str:
        where = f"{self.config.mount}/{self.config.prefix}".rstrip("/")
        return f"vault ({self.config.address}, {where})"

    # -- the backend interface --------------------------------------------------------------------

    def add(self, credential: Credential, private_pem: bytes) -> None:
        name = credential.name
        try:
            existing = self._read(name)
        except _DeletedInVault as exc:
            raise CredentialExists(f"a credential named '{name}' already exists: {exc}") from None
        if existing is not None:
            raise CredentialExists(f"a credential named '{name}' already exists (in {self.describe()})")
        secret = {"format": FORMAT, **credential.as_dict(), "private_key": private_pem.decode("ascii")}
        kv = self._kv(f"writing '{name}'")
        with self._errors(f"writing '{name}'"):
            try:
                # cas=0: written only if nothing is there, so two concurrent creators cannot both win.
                kv.create_or_update_secret(path=self._path(name), secret=secret, cas=0,
                                           mount_point=self.config.mount)
            except self._hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" not in str(exc):
                    raise
                raise CredentialExists(f"a credential named '{name}' already exists (in {self.describe()}; "
                                       "written by someone else meanwhile)") from None

    def get(self, name: str) -> Credential:
        return self._credential(name, self._existing(name))

    def private_key(self, name: str) -> bytes:
        secret = self._existing(name)
        if not isinstance(secret.get("private_key"), str):
            raise CredentialError(f"the Vault secret of '{name}' has no private key")
        return secret["private_key"].encode("ascii")

    def list(self) -> list[Credential]:
        kv = self._kv("listing credentials")
        with self._errors("listing credentials"):
            try:
                response = kv.list_secrets(path=self.config.prefix, mount_point=self.config.mount)
            except self._hvac.exceptions.InvalidPath as exc:
                self._raise_if_unmounted(exc)
                return []  # nothing written under the prefix yet
        keys = (response.get("data") or {}).get("keys") or []
        found = []
        for key in sorted(k for k in keys if isinstance(k, str) and not k.endswith("/")):  # "x/": a folder
            try:
                secret = self._read(key)
            except _DeletedInVault:
                continue  # its latest version was deleted outside orch: not usable, and get() says so
            if secret is not None:
                found.append(self._credential(key, secret))
        return found

    def delete(self, name: str) -> None:
        try:
            self._existing(name)
        except _DeletedInVault:
            pass  # what remains (metadata, older versions) is removed too: else the name stays unusable
        kv = self._kv(f"deleting '{name}'")
        with self._errors(f"deleting '{name}'"):
            kv.delete_metadata_and_all_versions(path=self._path(name), mount_point=self.config.mount)

    # -- internals --------------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return f"{self.config.prefix}/{name}" if self.config.prefix else name

    def _kv(self, what: str) -> Any:
        if self._client is None:
            try:
                import hvac  # optional: only Vault users need it
            except ImportError:
                raise CredentialError("ORCH_VAULT_ADDR is set but the Python package 'hvac' is not installed "
                                      "(pip install hvac)") from None
            self._hvac = hvac
            self._client = hvac.Client(url=self.config.address, token=self.config.token,
                                       verify=self.config.ca_cert, timeout=self.config.timeout)
        if not self._mount_checked:
            self._check_mount(what)
        return self._client.secrets.kv.v2

    def _check_mount(self, what: str) -> None:
        """Refuse a mount that is not KV version 2. On a KV v1 mount the v2 requests half work: a write
        lands at <mount>/data/..., a read finds it, but list finds nothing and delete removes nothing."""
        mount = self.config.mount
        with self._errors(what):
            try:
                # What Vault's own CLI asks to learn a mount's version; any token with a right under the
                # mount may read it.
                reply = self._client.adapter.get(
                    self._hvac.utils.format_url("/v1/sys/internal/ui/mounts/{mount}", mount=mount))
            except (self._hvac.exceptions.Forbidden, self._hvac.exceptions.InvalidPath):
                # This token may not read it (nor may a root token where nothing is mounted), or the server
                # does not offer it: the requests themselves will tell.
                reply = None
        if isinstance(reply, dict):
            info = reply.get("data") or {}
            kind, version = info.get("type"), str((info.get("options") or {}).get("version") or "1")
            if kind != "kv" or version != "2":
                engine = f"KV version {version}" if kind == "kv" else f"a '{kind}' secrets engine"
                raise CredentialError(f"Vault at {self.config.address}: the mount '{mount}' is {engine}, and "
                                      "orch needs KV version 2 (ORCH_VAULT_MOUNT)")
        self._mount_checked = True  # not after a refusal: every call is refused alike

    def _raise_if_unmounted(self, exc: Exception) -> None:
        # Vault answers 404 both for a missing secret and for a path no engine is mounted at; only the
        # second says "no handler for route". Telling them apart keeps a wrong ORCH_VAULT_MOUNT from
        # reading as "no credential named ..." or as an empty list.
        if "no handler for route" in str(exc):
            raise CredentialError(f"Vault at {self.config.address} has no secrets engine mounted at "
                                  f"'{self.config.mount}' (ORCH_VAULT_MOUNT)") from None

    def _read(self, name: str) -> dict[str, Any] | None:
        """The latest version's data; None when nothing is stored under the name. Raises
        _DeletedInVault when only metadata and deleted or destroyed versions remain."""
        kv = self._kv(f"reading '{name}'")
        with self._errors(f"reading '{name}'"):
            try:
                response = kv.read_secret_version(path=self._path(name), mount_point=self.config.mount,
                                                  raise_on_deleted_version=True)
            except self._hvac.exceptions.InvalidPath as exc:
                self._raise_if_unmounted(exc)
                # Vault's 404 for a deleted or destroyed latest version still carries its metadata.
                if isinstance(((getattr(exc, "json", None) or {}).get("data") or {}).get("metadata"), dict):
                    raise _DeletedInVault(
                        f"the latest version of '{name}' at {self.config.mount}/{self._path(name)} was deleted "
                        f"in Vault outside orch; delete the credential to remove what remains") from None
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
