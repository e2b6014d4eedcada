"""What is known about a credential without decrypting anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Credential:
    name: str
    type: str  # "ssh-ed25519"
    public_key: str  # OpenSSH one-line format, with the comment
    fingerprint: str  # "SHA256:..."
    created: str  # ISO 8601, UTC
    comment: str = ""
    user: str | None = None  # the remote account the key is meant for, if given

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        return cls(name=str(data["name"]), type=str(data["type"]), public_key=str(data["public_key"]),
                   fingerprint=str(data["fingerprint"]), created=str(data["created"]),
                   comment=str(data.get("comment") or ""), user=data.get("user") or None)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
