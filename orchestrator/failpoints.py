"""Named points where a test can have orch killed, so that a crash lands exactly where it must
(between two records of the store, say) instead of wherever a wall-clock delay happens to fall.

ORCH_KILL_AT=NAME kills this process with SIGKILL the first time it reaches point NAME;
ORCH_KILL_AT=NAME:N the N-th time. Unset (always, outside tests) a point costs a dictionary lookup.

Points: deploy-locked (the deploy holds its lock, nothing run yet), operation-started (a batch's
operations are recorded started, Ansible not yet asked), operation-done (an operation's result is
recorded), deploy-finished (the deploy's end is recorded, the lock not yet released), run-finished
(likewise for an execution of a workflow).
"""

from __future__ import annotations

import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()


def reached(point: str) -> None:
    wanted = os.environ.get("ORCH_KILL_AT")
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        if _counts[point] == (int(nth) if nth else 1):
            os.kill(os.getpid(), signal.SIGKILL)
