"""The Ansible boundary: the one module that spawns Ansible.

A batch is a list of operation requests that share one playbook. Each request becomes an inventory
alias of its target host, carrying its own variables, so one `ansible-playbook` process runs the
whole batch while outputs, failures and events stay exact per operation (the event's host is the
alias). Building the inventory and reading results are pure functions; `run_batch` spawns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Target:
    """Where an operation runs: a host reached over SSH, or the controller itself."""

    name: str  # the Compute node (or "orchestrator")
    address: str
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    known_hosts_file: str | None = None
    python: str | None = None
    key_credential: str | None = None  # an orch credential whose key is written out only for the run

    @property
    def is_local(self) -> bool:
        return self.address in LOCAL_ADDRESSES


@dataclass(frozen=True)
class OperationRequest:
    alias: str  # unique inventory alias for this operation (e.g. the step id, sanitized)
    playbook: str
    target: Target
    variables: Mapping[str, Any]
    label: str = ""  # "node Standard.create", for messages


@dataclass(frozen=True)
class TaskEvent:
    alias: str
    kind: str  # ok, changed, failed, unreachable, skipped
    task: str
    message: str = ""


@dataclass
class OperationResult:
    alias: str
    ok: bool = True
    unreachable: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    failed_task: str | None = None
    message: str | None = None
    events: list[TaskEvent] = field(default_factory=list)


class _Unsafe(str):
    """A string Ansible must not template: operation inputs are data, not Jinja."""


def _unsafe_representer(dumper: yaml.SafeDumper, value: _Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value))


class _InventoryDumper(yaml.SafeDumper):
    pass


_InventoryDumper.add_representer(_Unsafe, _unsafe_representer)


def _mark_unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {k: _mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_unsafe(v) for v in value]
    return value


def alias_for(step_id: str) -> str:
    return "op_" + re.sub(r"[^A-Za-z0-9_]", "_", step_id)


def connection_vars(target: Target, control_dir: str | None) -> dict[str, Any]:
    if target.is_local:
        # the controller's own interpreter: discovery can pick a shim for a Python that is not installed
        return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    ssh_args = ["-o ControlMaster=auto", "-o ControlPersist=120s", "-o IdentitiesOnly=yes",
                "-o StrictHostKeyChecking=yes", "-o BatchMode=yes", "-o ConnectTimeout=10"]
    if target.known_hosts_file:
        ssh_args.append(f"-o UserKnownHostsFile={target.known_hosts_file}")
    result: dict[str, Any] = {
        "ansible_connection": "ssh",
        "ansible_host": target.address,
        "ansible_ssh_common_args": " ".join(ssh_args),
        "ansible_python_interpreter": target.python or "/usr/bin/python3",
    }
    if target.user:
        result["ansible_user"] = target.user
    if target.port:
        result["ansible_port"] = int(target.port)
    if target.key_file:
        result["ansible_ssh_private_key_file"] = target.key_file
    return result


def build_inventory(requests: list[OperationRequest], control_dir: str | None = None) -> dict[str, Any]:
    hosts = {}
    for request in requests:
        host_vars = _mark_unsafe(dict(request.variables))
        host_vars.update(connection_vars(request.target, control_dir))
        hosts[request.alias] = host_vars
    return {"all": {"hosts": hosts}}


def ansible_environment(control_dir: str, forks: int) -> dict[str, str]:
    """Settings for every run: host keys checked, pipelining and ControlPersist on, quiet."""
    venv_bin = os.path.dirname(sys.executable)
    return {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
        "ANSIBLE_SSH_RETRIES": "0",
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_COMMAND_WARNINGS": "False",
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "True",
    }


def result_from_events(aliases: list[str], events: list[dict[str, Any]], rc: int, stdout_tail: str) -> dict[str, OperationResult]:
    """Per-operation results from ansible-runner's task events (not the fact cache, which breaks with 2.19)."""
    results = {alias: OperationResult(alias) for alias in aliases}
    # Ansible exits non-zero when any host failed; with the final stats seen, per-host events decide.
    play_finished = any(event.get("event") == "playbook_on_stats" for event in events)
    for event in events:
        data = event.get("event_data") or {}
        alias = data.get("host")
        if alias not in results:
            continue
        result = results[alias]
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        kind = event.get("event", "")
        if kind == "runner_on_ok":
            facts = res.get("ansible_facts") or {}
            result.facts.update(facts)
            result.events.append(TaskEvent(alias, "changed" if res.get("changed") else "ok", task))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            result.ok = False
            result.failed_task = task
            result.message = _failure_message(res)
            result.events.append(TaskEvent(alias, "failed", task, result.message))
        elif kind == "runner_on_unreachable":
            result.ok = False
            result.unreachable = True
            result.failed_task = task
            result.message = "host unreachable: " + str(res.get("msg", "")).strip()
            result.events.append(TaskEvent(alias, "unreachable", task, result.message))
        elif kind == "runner_on_skipped":
            result.events.append(TaskEvent(alias, "skipped", task))
    if rc != 0 and not play_finished:
        for result in results.values():
            if result.ok:  # the process failed before this operation's tasks could (e.g. a syntax error)
                result.ok = False
                result.message = result.message or ("ansible-playbook failed: " + stdout_tail.strip()[-1500:])
    return results


def _failure_message(res: Mapping[str, Any]) -> str:
    parts = [str(res.get("msg", "")).strip()]
    for key in ("stderr", "stdout"):
        text = str(res.get(key) or "").strip()
        if text and text not in parts[0]:
            parts.append(f"{key}: {text[-1500:]}")
    if res.get("rc") not in (None, 0):
        parts.append(f"rc={res['rc']}")
    return "; ".join(p for p in parts if p) or "task failed"


class AnsibleExecutor:
    """Runs batches through ansible-runner, one private data dir per run, removed afterwards."""

    def __init__(self, home: Path, forks: int = 20):
        self.home = home
        self.forks = forks
        # ssh's ControlPath must stay under ~100 characters: keep it short and ours.
        self.control_dir = str(home / "cp")
        os.makedirs(self.control_dir, mode=0o700, exist_ok=True)

    def run_batch(self, requests: list[OperationRequest], on_event: Callable[[TaskEvent], None] | None = None,
                  cancel: threading.Event | None = None, timeout: float | None = None) -> dict[str, OperationResult]:
        """Run a batch; keys of orch credentials exist in clear only while it runs, in 0600 files."""
        names = [r.target.key_credential for r in requests if r.target.key_credential]
        if not names:
            return self._run_batch(requests, on_event, cancel, timeout)
        from orchestrator.credentials import CredentialStore

        with CredentialStore(self.home).usable_key_files(names) as (keys, problems):
            ready = [replace(r, target=replace(r.target, key_file=str(keys[r.target.key_credential])))
                     if r.target.key_credential else r
                     for r in requests if r.target.key_credential not in problems]
            results = self._run_batch(ready, on_event, cancel, timeout) if ready else {}
        for r in requests:
            if r.target.key_credential in problems:
                results[r.alias] = OperationResult(r.alias, ok=False, message=problems[r.target.key_credential])
        return results

    def _run_batch(self, requests: list[OperationRequest], on_event: Callable[[TaskEvent], None] | None,
                   cancel: threading.Event | None, timeout: float | None) -> dict[str, OperationResult]:
        import ansible_runner  # imported late: loading it costs ~0.3 s and plan/validate never need it

        playbooks = {r.playbook for r in requests}
        if len(playbooks) != 1:
            raise ValueError("a batch shares one playbook")
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=self._runs_dir()))
        events: list[dict[str, Any]] = []
        aliases = [r.alias for r in requests]

        def handle(event: dict[str, Any]) -> bool:
            events.append(event)
            if on_event:
                for parsed in result_from_events(aliases, [event], 0, "").values():
                    for task_event in parsed.events:
                        on_event(task_event)
            return False  # nothing written to the artifact dir's job_events

        try:
            inventory_path = workdir / "inventory.yaml"
            fd = os.open(inventory_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                yaml.dump(build_inventory(requests, self.control_dir), f, Dumper=_InventoryDumper)
            runner = ansible_runner.run(
                private_data_dir=str(workdir),
                playbook=next(iter(playbooks)),
                inventory=str(inventory_path),
                envvars=ansible_environment(self.control_dir, self.forks),
                quiet=True,
                suppress_env_files=True,
                event_handler=handle,
                cancel_callback=(lambda: cancel.is_set()) if cancel else None,
                timeout=timeout,
                settings={"suppress_ansible_output": True},
            )
            stdout_tail = ""
            if runner.rc != 0:
                stdout_tail = _tail(runner)
            return result_from_events(aliases, events, runner.rc if runner.rc is not None else 1, stdout_tail)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def close(self) -> None:
        """End the SSH masters that ControlPersist kept open for this command's operations."""
        for socket_path in Path(self.control_dir).glob("*"):
            if socket_path.is_socket():
                subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "orch-control"],
                               capture_output=True, timeout=10, check=False, stdin=subprocess.DEVNULL)

    def _runs_dir(self) -> str:
        path = self.home / "runs"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(path)


def _tail(runner: Any) -> str:
    try:
        return runner.stdout.read()[-2000:]
    except (OSError, AttributeError, ValueError):
        return f"status {runner.status}"
