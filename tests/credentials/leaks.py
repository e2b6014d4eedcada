"""Test helpers: the forms in which a private key could leak, to search for them."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def pem_body(pem: bytes) -> str:
    """The base64 between the BEGIN/END lines, joined."""
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


def leak_needles(pem: bytes) -> list[bytes]:
    """Byte strings whose presence anywhere would mean the private key leaked: the PEM body (joined
    and per line, minus the first line, which is the same for every unencrypted OpenSSH key) and the
    32-byte ed25519 seed raw, in hex and in base64."""
    lines = [line for line in pem.decode().splitlines() if not line.startswith("-----")]
    key = serialization.load_ssh_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return [pem_body(pem).encode(), *(line.encode() for line in lines[1:]), seed, seed.hex().encode(),
            base64.b64encode(seed).rstrip(b"=")]


def files_containing(root: Path, needles: list[bytes], skip: set[str] = frozenset()) -> list[str]:
    hits = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in skip:
            data = path.read_bytes()
            hits += [f"{path}: needle {i}" for i, needle in enumerate(needles) if needle in data]
    return hits
