"""The default backend: one JSON file per credential under $ORCH_HOME/credentials/, 0600, holding the
public key and the private key encrypted with the master key (ciphertext only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.credentials import masterkey
from orchestrator.credentials.errors import CredentialError, CredentialExists, UnknownCredential
from orchestrator.credentials.files import ensure_home, private_dir, write_new
from orchestrator.credentials.record import Credential
from orchestrator.credentials.sshkey import key_blob

FORMAT = "orch-credential/1"


class LocalBackend:
    def __init__(self, home: Path):
        self.home = home
        self.folder = home / "credentials"

    def __repr__(self) -> str:
        return f"LocalBackend({str(self.folder)!r})"

    def describe(self) -> str:
        return f"local ({self.folder})"

    def add(self, credential: Credential, private_pem: bytes) -> None:
        key = masterkey.load_or_create(self.home)
        document = {"format": FORMAT, **credential.as_dict(), "cipher": masterkey.CIPHER,
                    "ciphertext": key.encrypt(private_pem, _associated(credential))}
        ensure_home(self.home)
        private_dir(self.folder)
        try:
            write_new(self._path(credential.name), (json.dumps(document, indent=2) + "\n").encode())
        except FileExistsError:
            raise CredentialExists(f"a credential named '{credential.name}' already exists") from None

    def get(self, name: str) -> Credential:
        return self._credential(name, self._read(name))

    def private_key(self, name: str) -> bytes:
        document = self._read(name)
        credential = self._credential(name, document)
        return masterkey.load(self.home).decrypt(document["ciphertext"], _associated(credential),
                                                 f"credential '{name}'")

    def list(self) -> list[Credential]:
        if not self.folder.is_dir():
            return []
        names = sorted(p.name[:-5] for p in self.folder.glob("*.json") if not p.name.startswith("."))
        return [self.get(name) for name in names]

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            raise UnknownCredential(f"no credential named '{name}'") from None

    def _credential(self, name: str, document: dict) -> Credential:
        try:
            return Credential.from_dict(document)
        except (KeyError, TypeError):
            raise CredentialError(f"{self._path(name)} is damaged (fields missing)") from None

    def _path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def _read(self, name: str) -> dict:
        path = self._path(name)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownCredential(f"no credential named '{name}'") from None
        except (OSError, ValueError) as exc:
            raise CredentialError(f"{path} cannot be read ({type(exc).__name__})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("name") != name \
                or not isinstance(document.get("ciphertext"), str):
            raise CredentialError(f"{path} is not an orch credential file (or is damaged)")
        return document


def _associated(credential: Credential) -> bytes:
    return f"{FORMAT}\0{credential.name}\0{key_blob(credential.public_key)}".encode()
