"""state.json: what a site chose once and must keep (its subnet, its hosts' indices)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from orchestrator.sim.errors import SimError


@dataclass(frozen=True)
class SiteState:
    name: str
    subnet: IPv4Network
    indices: tuple[tuple[str, int], ...]  # (host, index), in the order of `up --hosts`

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for h, _ in self.indices)

    def index_map(self) -> dict[str, int]:
        return dict(self.indices)


def load_state(path: Path) -> SiteState | None:
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return SiteState(
            name=str(raw["name"]),
            subnet=IPv4Network(raw["subnet"]),
            indices=tuple((str(h), int(i)) for h, i in raw["hosts"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SimError(f"{path} is damaged ({exc}); remove it after `down`") from exc


def save_state(path: Path, state: SiteState) -> None:
    data = {"name": state.name, "subnet": str(state.subnet), "hosts": [list(p) for p in state.indices]}
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def write_atomic(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
