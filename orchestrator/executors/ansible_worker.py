"""A long-lived Ansible process: imports Ansible once and runs playbook after playbook on request.

Starting `ansible-playbook` costs 0.6–0.9 s on our machines (interpreter, imports, plugin loading)
before any task runs; orch starts a few of these workers per command instead of one process per
batch. Protocol, one JSON object per line:

    parent → worker (stdin):  {"id": 7, "playbook": "/abs/play.yaml", "inventory": "/abs/inventory.yaml"}
    worker → parent (the pipe ORCH_PROTOCOL_FD):   {"id": 7, "event": {...}}  for every task result (ansible-runner's shape)
                              {"id": 7, "rc": 0, "error": null}  when the playbook has ended

Run as `python -m orchestrator.executors.ansible_worker`; the environment (ANSIBLE_* settings)
comes from the parent and is read by Ansible once, at import.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import warnings

CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback")


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
    """Kill this worker and everything it started once the orch process that started it is gone.

    The worker leads its own session (so that a Ctrl-C in orch's terminal reaches orch, which
    decides what to cancel), hence a SIGKILLed orch would leave it running the operation that
    `--resume` runs again. Polling the parent pid catches every way orch can die (PR_SET_PDEATHSIG
    fires when the spawning *thread* ends). Ansible's forks call setsid(), so killing our group
    is not enough: the tree is collected first, then killed, before anyone is reparented."""
    while os.getppid() == parent:
        time.sleep(interval)
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(0, signal.SIGKILL)


def main() -> int:
    parent = int(os.environ.get("ORCH_PARENT_PID", os.getppid()))
    threading.Thread(target=die_with_parent, args=(parent,), daemon=True, name="orch-parent-watch").start()
    protocol = os.fdopen(os.dup(int(os.environ["ORCH_PROTOCOL_FD"])), "w", buffering=1)
    os.environ["ANSIBLE_CALLBACK_PLUGINS"] = CALLBACK_DIR
    os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "orch_events"
    # the second configuration of Ansible's collection finder in one process is harmless
    warnings.filterwarnings("ignore", message=".*AnsibleCollectionFinder has already been configured.*")
    from ansible.cli.playbook import PlaybookCLI
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultSecretsContext
    from ansible.utils.context_objects import GlobalCLIArgs

    for line in sys.stdin:
        request = json.loads(line)
        os.environ["ORCH_REQUEST_ID"] = str(request["id"])
        # Ansible keeps "the" run's command line and vault secrets in process-wide singletons; each of
        # our runs has its own, so both are reset (else run 2 would read run 1's inventory path)
        VaultSecretsContext._current = None
        GlobalCLIArgs._Singleton__instance = None
        error = None
        try:
            rc = PlaybookCLI(["ansible-playbook", "-i", request["inventory"], request["playbook"]]).run()
        except AnsibleError as exc:
            rc, error = 4, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker lives on
            rc, error = 250, f"{type(exc).__name__}: {exc}"
        protocol.write(json.dumps({"id": request["id"], "rc": rc, "error": error}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
