"""ed25519 SSH key pairs, made and read with `cryptography` (no ssh-keygen subprocess: key material
never passes through argv, a pipe or a temporary file)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.credentials.errors import CredentialError

KEY_TYPE = "ssh-ed25519"


@dataclass(frozen=True)
class KeyPair:
    public_key: str  # "ssh-ed25519 AAAA... comment", the line for authorized_keys
    private_pem: bytes = field(repr=False)  # OpenSSH format, unencrypted: callers encrypt it


def generate(comment: str) -> KeyPair:
    if any(c in comment for c in "\r\n\0"):
        raise CredentialError("a key comment must be one line")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode("ascii")
    return KeyPair(f"{blob} {comment}".strip(), private_pem)


def key_blob(public_key: str) -> str:
    """'ssh-ed25519 AAAA...' without the comment: what identifies the key."""
    return " ".join(public_key.split()[:2])


def fingerprint(public_key: str) -> str:
    """'SHA256:...' as `ssh-keygen -l` prints it: unpadded base64 of the SHA-256 of the key blob."""
    try:
        raw = base64.b64decode(public_key.split()[1], validate=True)
    except (IndexError, ValueError) as exc:
        raise CredentialError("not an OpenSSH public key line") from exc
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii").rstrip("=")


def matches(private_pem: bytes, public_key: str) -> bool:
    """Whether the private key is the one whose public half is `public_key`."""
    try:
        key = serialization.load_ssh_private_key(private_pem, password=None)
    except (ValueError, TypeError):
        return False  # no detail: the message of a parse error could quote the input
    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return blob.decode("ascii") == key_blob(public_key)
