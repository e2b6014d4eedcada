"""A long-lived Ansible process: imports Ansible once and runs playbook after playbook on request.

Starting `ansible-playbook` costs 0.6–0.9 s on our machines (interpreter, imports, plugin loading)
before any task runs; orch starts a few of these workers per command instead of one process per
batch. Protocol, one JSON object per line:

    parent → worker (stdin):  {"id": 7, "playbook": "/abs/play.yaml", "inventory": "/abs/inventory.yaml",
                               "environment": {"ANSIBLE_SSH_CONTROL_PATH_DIR": "/tmp/orch-cp-..."}}
    worker → parent (the pipe ORCH_PROTOCOL_FD):   {"id": 7, "event": {...}}
                                                   for every task result (ansible-runner's shape)
                              {"id": 7, "rc": 0, "error": null}  when the playbook has ended

Run as `python -m orchestrator.executors.ansible_worker`; the environment (ANSIBLE_* settings)
comes from the parent and is read by Ansible once, at import. A request's "environment" holds what
belongs to the command that sends it rather than to the worker (its SSH masters' folder): Ansible reads
a plugin's settings from the environment when a task uses the plugin, in the task's fork, so a worker
started before its command existed (a service's pool, see ansible.WorkerPool) serves it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings

from orchestrator.executors.lifeline import start_lifeline

CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback")


def main() -> int:
    start_lifeline()
    nice = int(os.environ.get("ORCH_WORKER_NICE") or 0)
    if nice > 0:
        _run_below(nice)
    protocol = os.fdopen(os.dup(int(os.environ["ORCH_PROTOCOL_FD"])), "w", buffering=1)
    os.environ["ANSIBLE_CALLBACK_PLUGINS"] = CALLBACK_DIR
    os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "orch_events"
    # the second configuration of Ansible's collection finder in one process is harmless
    warnings.filterwarnings("ignore", message=".*AnsibleCollectionFinder has already been configured.*")
    from ansible.errors import AnsibleError

    _warm_up()
    for line in sys.stdin:
        request = json.loads(line)
        os.environ["ORCH_REQUEST_ID"] = str(request["id"])
        os.environ.update(request.get("environment") or {})
        error = None
        try:
            rc = _run_playbook(request["inventory"], request["playbook"])
        except AnsibleError as exc:
            rc, error = 4, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, the worker lives on
            rc, error = 250, f"{type(exc).__name__}: {exc}"
        protocol.write(json.dumps({"id": request["id"], "rc": rc, "error": error}) + "\n")
    return 0


def _run_below(nice: int) -> None:
    """A service runs its executions' Ansible below itself, so that its replies to users stay quick.

    A nice value alone is not enough on Linux: with autogroups (the default) the CPU is first shared
    between sessions, and nice only weighs processes inside one session. This worker leads a session of
    its own, and each of Ansible's forks calls setsid() again; every such new session would take as much
    CPU as the whole server. So the worker's session, and each one its forks make, gets the nice value
    too (/proc/self/autogroup: lowering one's own priority needs no privilege)."""
    os.nice(nice)
    _autogroup_nice(nice)
    real_setsid = os.setsid

    def setsid() -> int:
        session = real_setsid()
        _autogroup_nice(nice)
        return session

    os.setsid = setsid  # Ansible forks its task workers from this process: they inherit it


def _autogroup_nice(nice: int) -> None:
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(nice))
    except OSError:
        pass  # a kernel without autogroups: nice alone does it


def _run_playbook(inventory: str, playbook: str) -> int:
    from ansible.cli.playbook import PlaybookCLI
    from ansible.parsing.vault import VaultSecretsContext
    from ansible.utils.context_objects import GlobalCLIArgs

    # Ansible keeps "the" run's command line and vault secrets in process-wide singletons; each of
    # our runs has its own, so both are reset (else run 2 would read run 1's inventory path)
    VaultSecretsContext._current = None
    GlobalCLIArgs._Singleton__instance = None
    return PlaybookCLI(["ansible-playbook", "-i", inventory, playbook]).run()


def _warm_up() -> None:
    """A play without tasks, run while the parent still loads its topology: Ansible's first run in a
    process spends ~0.4 s loading plugins and configuration that later runs reuse. Its messages carry
    request id 0, which the parent never asks for."""
    os.environ["ORCH_REQUEST_ID"] = "0"
    with tempfile.TemporaryDirectory(prefix="orch-warm-") as folder:
        playbook = os.path.join(folder, "warm.yaml")
        with open(playbook, "w") as file:
            file.write("- hosts: all\n  gather_facts: false\n  tasks: []\n")
        try:
            _run_playbook("localhost,", playbook)
        except Exception:  # noqa: BLE001 - only a head start: real runs report their own problems
            pass


if __name__ == "__main__":
    sys.exit(main())
