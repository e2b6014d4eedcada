"""Private files and folders: created with their final mode from the start, replaced atomically.

A file is written to a temporary name in the same folder (mode 0600 from creation, so there is no
moment where it is readable by others) and then moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def private_dir(path: Path) -> Path:
    """A folder only we can enter (0700), made if missing; an existing one of ours is tightened."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def ensure_home(home: Path, *, tighten: bool = False) -> Path:
    """$ORCH_HOME, made 0700 if missing. With `tighten` (where the master key is kept) an existing home
    of ours that others can enter is set to 0700 too; one owned by someone else is left alone."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if tighten:
        info = home.stat()
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            home.chmod(0o700)
    return home


def _write_temp(folder: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)  # mkstemp: O_EXCL, mode 0600
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return Path(tmp)


def write_new(path: Path, data: bytes) -> None:
    """Create `path` with `data` (0600), atomically; FileExistsError if it exists.

    link() does not replace an existing name, so of two concurrent creators exactly one wins and the
    file appears complete or not at all.
    """
    tmp = _write_temp(path.parent, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()


def write_replace(path: Path, data: bytes) -> None:
    """Write `path` (0600), atomically replacing any previous content."""
    tmp = _write_temp(path.parent, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
