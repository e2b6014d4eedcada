"""Ansible processes die with the orch process that started them.

orch runs Ansible in processes that lead their own session (so that a Ctrl-C in orch's terminal
reaches orch, which decides what to cancel), so a SIGKILLed orch would leave them running the
operation that `--resume` runs again. Each such process watches orch's pid (ORCH_PARENT_PID, set by
the executor) from a thread, and once orch is gone kills itself and everything it started. Polling
catches every way orch can die; PR_SET_PDEATHSIG would not do, as it fires when the spawning
*thread* ends, and Ansible's forks call setsid(), so killing a process group is not enough either.
"""

from __future__ import annotations

import os
import signal
import threading
import time

_started = threading.Event()


def descendants(root: int) -> list[int]:
    """Every process below `root`, from /proc (whatever session or group each one made for itself)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def die_with_parent(parent: int, interval: float = 0.1) -> None:
    """Once `parent` is no longer our parent: kill the whole tree below us (collected first, then
    killed, before anyone is reparented), then our own group, ourselves included."""
    while os.getppid() == parent:
        time.sleep(interval)
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(0, signal.SIGKILL)


def start_lifeline() -> None:
    """Once per process: watch the orch process named by ORCH_PARENT_PID (else the parent)."""
    if _started.is_set():
        return
    _started.set()
    parent = int(os.environ.get("ORCH_PARENT_PID") or os.getppid())
    threading.Thread(target=die_with_parent, args=(parent,), daemon=True, name="orch-lifeline").start()
