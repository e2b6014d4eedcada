"""The master key that encrypts private keys at rest: $ORCH_HOME/master.key, 0600.

AES-256-GCM, a fresh 96-bit nonce per encryption. The associated data binds a ciphertext to its
credential's name and public key, so a ciphertext copied into another credential's file, or a file
whose public key was swapped, fails to decrypt instead of yielding a key for the wrong thing.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orchestrator.credentials.errors import CredentialError
from orchestrator.credentials.files import ensure_home, write_new

FILE_NAME = "master.key"
CIPHER = "AES-256-GCM"
_NONCE = 12


@dataclass(frozen=True)
class MasterKey:
    path: Path
    key: bytes = field(repr=False)

    def encrypt(self, plaintext: bytes, associated: bytes) -> str:
        nonce = os.urandom(_NONCE)
        return base64.b64encode(nonce + AESGCM(self.key).encrypt(nonce, plaintext, associated)).decode("ascii")

    def decrypt(self, ciphertext: str, associated: bytes, what: str) -> bytes:
        try:
            raw = base64.b64decode(ciphertext, validate=True)
            return AESGCM(self.key).decrypt(raw[:_NONCE], raw[_NONCE:], associated)
        except (InvalidTag, ValueError):
            # `from None`: nothing of the ciphertext or key in a chained traceback either.
            raise CredentialError(
                f"cannot decrypt {what}: the master key {self.path} is not the one it was encrypted with, "
                "or the stored file was altered") from None


def load(home: Path) -> MasterKey:
    """The existing master key. Never made here: a new key could not decrypt anything already stored."""
    path = home / FILE_NAME
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CredentialError(f"no master key at {path}: the credentials stored here cannot be decrypted "
                              "(restore the master.key they were created with)") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise CredentialError(f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                              f"run: chmod 600 {path}")
    if info.st_uid != os.geteuid():
        raise CredentialError(f"{path} is not owned by the current user")
    return MasterKey(path, _decode(path))


def load_or_create(home: Path) -> MasterKey:
    """The master key, made on first use (0600 from creation, complete or absent, never replaced)."""
    ensure_home(home, tighten=True)
    path = home / FILE_NAME
    if not path.exists():
        try:
            write_new(path, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
        except FileExistsError:
            pass  # another process made it first: use theirs
    return load(home)


def _decode(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise CredentialError(f"{path} is damaged (expected 32 bytes of base64)")
    return key
