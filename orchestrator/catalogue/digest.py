"""A dataset's size and checksum, computed the way the data movers compute them.

The checksum of a dataset is the sha256 of its manifest's text: one line `<sha256>  ./<path>` per file (files
only, symbolic links not followed), sorted bytewise by path, joined by newlines, with no newline at the end.
That is what the embedded mover's manifest (playbooks/eflows/movers/ansible/move.yaml: `find . -type f
-print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --` in the dataset's folder, its output as Ansible
reports it, the last newline dropped) gives, and so what a move's `checksum` attribute holds. A single file
is moved into a folder of its own and checked there, so its checksum is that of a one-line manifest
(`<sha256>  ./<name>`), not the file's own sha256. The size is the sum of the files' sizes in bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

_CHUNK = 1 << 20


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _line(sha: str, name: bytes) -> bytes:
    # GNU sha256sum (coreutils 9) escapes a name holding a backslash, newline or carriage return and
    # marks the line with a leading backslash
    if any(c in name for c in b"\\\n\r"):
        escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + sha.encode() + b"  " + escaped
    return sha.encode() + b"  " + name


def _files(root: Path) -> list[tuple[bytes, Path]]:
    found = []
    for folder, _, names in os.walk(root):  # followlinks=False, like find
        for name in names:
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append((b"./" + os.fsencode(path.relative_to(root)), path))
    return sorted(found)


def manifest(place: Path) -> bytes:
    """The manifest text of a folder, or of a file as the movers stage it (alone in a folder)."""
    if place.is_dir():
        return b"\n".join(_line(_file_sha256(path), name) for name, path in _files(place))
    return _line(_file_sha256(place), b"./" + os.fsencode(place.name))


def dataset_digest(place: str | Path) -> tuple[int, str]:
    """(size in bytes, checksum) of a folder or a file on this machine."""
    path = Path(place)
    if not path.exists():
        raise FileNotFoundError(2, "no such file or folder", str(path))
    size = sum(p.lstat().st_size for _, p in _files(path)) if path.is_dir() else path.stat().st_size
    return size, hashlib.sha256(manifest(path)).hexdigest()
