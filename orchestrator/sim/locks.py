"""File locks: one per site (up/down of the same site exclude each other) and one for the
machine (two sites coming up at once must not pick the same subnet)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# /run/lock is a tmpfs on Debian; the lock file itself holds nothing.
SUBNET_LOCK = Path("/run/lock/orch-sim-subnets.lock")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
