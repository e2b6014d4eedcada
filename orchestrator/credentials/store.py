"""CredentialStore: SSH credentials by name, whichever backend keeps them (local files or Vault).

A decrypted private key exists only in memory, or for the length of one `with key_file(name)` in a
0600 file inside a private folder under $ORCH_HOME/run-keys/ - that is how a key reaches Ansible for
the operation that needs it, and no longer.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from orchestrator.credentials import sshkey
from orchestrator.credentials.errors import CredentialError, validate_name
from orchestrator.credentials.files import ensure_home, private_dir, write_new
from orchestrator.credentials.local import LocalBackend
from orchestrator.credentials.record import Credential, now_iso
from orchestrator.credentials.vault import VaultBackend, VaultConfig
from orchestrator.scratch import new_private_folder

SECRET_KEYS = ("private_key", "public_key", "user", "fingerprint")
RUN_KEYS = "run-keys"


class Backend(Protocol):
    def describe(self) -> str: ...
    def add(self, credential: Credential, private_pem: bytes) -> None: ...
    def get(self, name: str) -> Credential: ...
    def private_key(self, name: str) -> bytes: ...
    def list(self) -> list[Credential]: ...
    def delete(self, name: str) -> None: ...


def backend_from_env(home: Path) -> Backend:
    """Vault when ORCH_VAULT_ADDR is set, else files under home."""
    config = VaultConfig.from_env()
    return VaultBackend(config) if config else LocalBackend(home)


class CredentialStore:
    def __init__(self, home: Path, backend: Backend | None = None):
        self.home = Path(home)
        self._backend = backend  # chosen on first use: constructing a store touches nothing

    def __repr__(self) -> str:
        backend = self._backend.describe() if self._backend else "not chosen yet"
        return f"CredentialStore(home={str(self.home)!r}, backend={backend!r})"

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = backend_from_env(self.home)
        return self._backend

    def create(self, name: str, comment: str | None = None, user: str | None = None) -> str:
        """Make an ed25519 key pair, keep it under `name`, return the public key line."""
        validate_name(name)
        if user is not None and not user.strip():
            user = None
        comment = f"orch:{name}" if comment is None else comment.strip()
        pair = sshkey.generate(comment)
        self.backend.add(Credential(name=name, type=sshkey.KEY_TYPE, public_key=pair.public_key,
                                    fingerprint=sshkey.fingerprint(pair.public_key), created=now_iso(),
                                    comment=comment, user=user),
                         pair.private_pem)
        return pair.public_key

    def get(self, name: str) -> Credential:
        return self.backend.get(validate_name(name))

    def list(self) -> list[Credential]:
        return self.backend.list()

    def delete(self, name: str) -> None:
        self.backend.delete(validate_name(name))

    def private_key(self, name: str) -> bytes:
        """The decrypted private key (OpenSSH PEM). Keep it in memory; use key_file() to hand it over."""
        return self.backend.private_key(validate_name(name))

    def verify(self, name: str) -> Credential:
        """Decrypt the private key and check it is the pair of the stored public key."""
        credential = self.get(name)
        if not sshkey.matches(self.private_key(name), credential.public_key):
            raise CredentialError(f"the private key of '{name}' does not match its public key")
        return credential

    def secret(self, name: str, key: str | None = None) -> Any:
        """For TOSCA get_secret: [name] or [name, private_key] is the private key's text; public_key,
        user and fingerprint are the stored public fields."""
        if key in (None, "private_key"):
            return self.private_key(name).decode("ascii")
        if key not in SECRET_KEYS:
            raise CredentialError(f"credential '{name}' has no '{key}' (known: {', '.join(SECRET_KEYS)})")
        value = getattr(self.get(name), key)
        if value is None:
            raise CredentialError(f"credential '{name}' has no {key} stored")
        return value

    @contextlib.contextmanager
    def key_file(self, name: str) -> Iterator[Path]:
        """The private key in a 0600 file inside a fresh 0700 folder, both removed on leaving (also on
        an exception). A folder left by a process that was killed is removed by the next key_file()."""
        pem = self.private_key(name)  # first: an unknown name or a wrong master key leaves nothing behind
        folder = new_private_folder(self._run_keys())
        try:
            path = folder / f"id_{name}"
            write_new(path, pem)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextlib.contextmanager
    def key_files(self, names: Iterable[str]) -> Iterator[dict[str, Path]]:
        """key_file() for several credentials at once (e.g. the hosts of one Ansible batch)."""
        with contextlib.ExitStack() as stack:
            yield {name: stack.enter_context(self.key_file(name)) for name in dict.fromkeys(names)}

    @contextlib.contextmanager
    def usable_key_files(self, names: Iterable[str]) -> Iterator[tuple[dict[str, Path], dict[str, str]]]:
        """key_file() for each name that can be read, and why for each that cannot: for an executor,
        so that one unusable credential fails only the operations that need it."""
        keys: dict[str, Path] = {}
        problems: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            for name in dict.fromkeys(names):
                try:
                    keys[name] = stack.enter_context(self.key_file(name))
                except CredentialError as exc:
                    problems[name] = f"credential '{name}': {exc}"
                except OSError as exc:
                    problems[name] = f"credential '{name}': cannot write its key file: {exc.strerror or exc}"
            yield keys, problems

    def _run_keys(self) -> Path:
        ensure_home(self.home)
        return private_dir(self.home / RUN_KEYS)
