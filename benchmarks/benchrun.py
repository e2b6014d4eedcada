"""What every benchmark on the simulated site does before it starts: hold its lock, so that a second run
does not take this one's site (same name, same network namespaces) down at its start; turn SIGTERM into
an exit, so that its `finally` takes the site down; and say which orch it measures."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO


def hold_single_run(lock_file: str, script: str) -> IO | None:
    """The lock, held until the process exits; None (said on stderr) if another run holds it."""
    lock = open(lock_file, "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another {script} runs (it holds {lock_file})", file=sys.stderr, flush=True)
        lock.close()
        return None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return lock


def orch_tree(source: Path) -> tuple[str, list[str]]:
    """The commit of the orch measured, and its files that differ from it (someone may be changing a
    playbook meanwhile: each spawn runs the tree as it is)."""
    commit = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    changed = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "orchestrator",
                              "tosca_types", "playbooks"], capture_output=True, text=True, check=False).stdout
    return commit, changed.splitlines()
