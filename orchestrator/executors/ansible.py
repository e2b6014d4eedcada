"""The Ansible boundary: the one module that spawns Ansible.

A batch is a list of operation requests that share one playbook. Each request becomes an inventory
alias of its target host, carrying its own variables, so one playbook run serves the whole batch
while outputs, failures and events stay exact per operation (the event's host is the alias).

Runs go to long-lived worker processes that keep Ansible loaded (`ansible_worker.py`): starting
`ansible-playbook` costs 0.6–0.9 s per run here, a worker pays it once per command. With
ORCH_ANSIBLE=runner, each batch runs through ansible-runner instead (one `ansible-playbook` each).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.executors.inventory import (
    LOCAL_ADDRESSES,
    OperationRequest,
    Target,
    alias_for,
    ansible_environment,
    build_inventory,
    connection_vars,
    credentials_of_hosts,
    master_args,
    with_key_files,
    write_inventory,
)
from orchestrator.executors.results import OperationResult, TaskEvent, result_from_events
from orchestrator.scratch import new_private_folder, owner_tag, stale_folders

__all__ = [
    "LOCAL_ADDRESSES",
    "AnsibleExecutor",
    "OperationRequest",
    "OperationResult",
    "Target",
    "TaskEvent",
    "WorkerPool",
    "alias_for",
    "build_inventory",
    "connection_vars",
    "result_from_events",
]

EventSink = Callable[[TaskEvent], None]
CONTROL_PREFIX = "orch-cp-"
CALLBACK_DIR = str(Path(__file__).with_name("callback"))


class _Worker:
    """One long-lived Ansible process, used by one batch at a time."""

    def __init__(self, env: dict[str, str]):
        read_fd, write_fd = os.pipe()
        # stdout/stderr of Ansible's own display go nowhere: task output may hold secrets, and
        # everything orch needs arrives on the protocol pipe.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.executors.ansible_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, "ORCH_PROTOCOL_FD": str(write_fd), "ORCH_PARENT_PID": str(os.getpid())},
            pass_fds=(write_fd,), start_new_session=True, text=True)
        os.close(write_fd)
        self.protocol = os.fdopen(read_fd, "r")
        self.next_id = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, playbook: str, inventory: str, environment: dict[str, str], on_event: Callable[[dict], None],
            cancel: threading.Event | None, timeout: float | None) -> tuple[int, str | None]:
        self.next_id += 1
        request_id = self.next_id
        self.process.stdin.write(json.dumps({"id": request_id, "playbook": playbook, "inventory": inventory,
                                             "environment": environment}) + "\n")
        self.process.stdin.flush()
        outcome: dict[str, Any] = {}

        def read() -> None:
            for line in self.protocol:
                message = json.loads(line)
                if message.get("id") != request_id:
                    continue
                if "event" in message:
                    on_event(message["event"])
                else:
                    outcome.update(message)
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout if timeout else None
        while reader.is_alive():
            reader.join(0.2)
            stop = (cancel is not None and cancel.is_set()) or (deadline is not None and time.monotonic() > deadline)
            if stop or not self.alive():
                self.kill()
                reader.join(5)
                why = "cancelled" if cancel is not None and cancel.is_set() else \
                    ("timed out" if deadline and time.monotonic() > deadline else "the Ansible worker died")
                return 254, why
        return int(outcome.get("rc", 1)), outcome.get("error")

    def kill(self) -> None:
        """The worker leads its own session: its Ansible forks go with it."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.protocol.close()

    def ask_to_end(self) -> None:
        """End of input: an idle worker exits by itself (close() waits for it)."""
        if self.alive() and not self.process.stdin.closed:
            self.process.stdin.close()

    def close(self) -> None:
        self.ask_to_end()
        if self.alive():
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def _worker_environment(control_dir: str | None, forks: int, nice: int) -> dict[str, str]:
    env = {**os.environ, **ansible_environment(control_dir or "", forks), "ORCH_WORKER_NICE": str(nice)}
    if control_dir is None:  # each request names its command's folder
        del env["ANSIBLE_SSH_CONTROL_PATH_DIR"]
    return env


class WorkerPool:
    """Ansible workers started ahead of the commands that will use them, for a long-lived process (the
    service): an execution's executor takes one that has already started its interpreter and loaded
    Ansible, instead of waiting for that at its first operation (about 0.6–0.9 s of CPU, at the workers'
    low priority). A worker taken is never given back: it serves one command and ends with it, so no
    process outlives the execution whose runs (and key files) it saw; the pool starts the next at once."""

    def __init__(self, forks: int = 20, nice: int = 0, size: int = 1):
        self.forks, self.nice, self.size = forks, nice, size
        self._ready: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._fill()

    def take(self, forks: int, nice: int) -> _Worker | None:
        """A warm worker for a command with these settings, or None (the command starts its own)."""
        if (forks, nice) != (self.forks, self.nice):
            return None
        taken, dead = None, []
        with self._lock:
            while self._ready and taken is None:
                worker = self._ready.pop(0)
                if worker.alive():
                    taken = worker
                else:  # ended while it waited (killed by someone): replaced below
                    dead.append(worker)
        for worker in dead:
            worker.kill()
        self._fill()
        return taken

    def _fill(self) -> None:
        with self._lock:
            while not self._closed and len(self._ready) < self.size:
                self._ready.append(_Worker(_worker_environment(None, self.forks, self.nice)))

    @property
    def ready_pids(self) -> list[int]:
        """The process ids of the workers waiting to be taken."""
        with self._lock:
            return [w.process.pid for w in self._ready]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ready, self._ready = self._ready, []
        for worker in ready:
            worker.ask_to_end()
        for worker in ready:
            worker.close()


class AnsibleExecutor:
    """Runs batches of operations; one instance per orch command (close() ends its workers and SSH masters).

    warm=True starts a worker at once, so that Ansible loads while the command is still loading its
    topology (2 cores: about a second off every deploy); with a pool, it takes the pool's warm worker
    instead when there is one."""

    def __init__(self, home: Path, forks: int = 20, warm: bool = False, nice: int = 0,
                 pool: WorkerPool | None = None):
        self.home = home
        self.forks = forks
        self.nice = nice  # the workers' niceness: a service keeps the CPU for its own replies first
        # ssh's ControlPath must stay under ~100 characters whatever $ORCH_HOME is, hence the system's
        # temporary folder; and ours alone, so that close() ends this command's SSH masters and not
        # those of an orch running beside it
        tmp = Path(tempfile.gettempdir())
        for stale in stale_folders(tmp, CONTROL_PREFIX):
            _end_masters(stale)
        self.control_dir = tempfile.mkdtemp(prefix=f"{CONTROL_PREFIX}{owner_tag()}-", dir=tmp)
        self._runs: Path | None = None
        self.use_runner = os.environ.get("ORCH_ANSIBLE") == "runner"
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._master_locks: dict[tuple, threading.Lock] = {}
        self._opened: set[tuple] = set()  # hosts whose SSH master this command opened
        if warm and not self.use_runner:
            pooled = pool.take(forks, nice) if pool is not None else None
            if pooled is not None:
                self._all.append(pooled)
            self._idle.append(pooled or self._new_worker())

    def run_batch(self, requests: list[OperationRequest], on_event: EventSink | None = None,
                  cancel: threading.Event | None = None, timeout: float | None = None) -> dict[str, OperationResult]:
        """Run a batch; keys of orch credentials exist in clear only while it runs, in 0600 files."""
        names = [r.target.key_credential for r in requests if r.target.key_credential]
        names += [name for r in requests for name in credentials_of_hosts(r.variables)]
        if not names:
            return self._run_batch(requests, on_event, cancel, timeout)
        from orchestrator.credentials import CredentialStore

        with CredentialStore(self.home).usable_key_files(names) as (keys, problems):
            ready = [_with_keys(r, keys) for r in requests if r.target.key_credential not in problems]
            results = self._run_batch(ready, on_event, cancel, timeout) if ready else {}
        for r in requests:
            if r.target.key_credential in problems:
                results[r.alias] = OperationResult(r.alias, ok=False, message=problems[r.target.key_credential])
        return results

    def _run_batch(self, requests: list[OperationRequest], on_event: EventSink | None,
                   cancel: threading.Event | None, timeout: float | None) -> dict[str, OperationResult]:
        playbooks = {r.playbook for r in requests}
        if len(playbooks) != 1:
            raise ValueError("a batch shares one playbook")
        aliases = [r.alias for r in requests]
        events: list[dict[str, Any]] = []

        def handle(event: dict[str, Any]) -> None:
            events.append(event)
            if on_event:
                for parsed in result_from_events(aliases, [event], 0, "").values():
                    for task_event in parsed.events:
                        on_event(task_event)

        self._open_masters(requests)
        workdir = Path(tempfile.mkdtemp(prefix="run-", dir=self._runs_dir()))  # under our own 0700 folder
        try:
            inventory = str(workdir / "inventory.yaml")
            write_inventory(inventory, requests)
            if self.use_runner:
                rc, error = self._run_with_runner(workdir, next(iter(playbooks)), inventory, handle, cancel, timeout)
            else:
                rc, error = self._run_in_worker(next(iter(playbooks)), inventory, handle, cancel, timeout)
            return result_from_events(aliases, events, rc, error or f"exit code {rc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _open_masters(self, requests: list[OperationRequest]) -> None:
        """Each SSH host's master, opened once per command, before any Ansible fork connects: with
        ControlMaster=auto, clients that start together before a master exists each connect on their own.
        A host whose master this executor opened is not asked again (a master that ControlPersist let go
        after a long idle spell is opened anew by the next Ansible client)."""
        targets = {(r.target.address, r.target.port, r.target.user): r.target for r in requests
                   if not r.target.is_local}
        with self._lock:
            targets = {key: target for key, target in targets.items() if key not in self._opened}
        threads = [threading.Thread(target=self._open_master, args=item) for item in targets.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _open_master(self, key: tuple, target: Target) -> None:
        with self._lock:
            lock = self._master_locks.setdefault(key, threading.Lock())
        args = ["ssh", *master_args(target, self.control_dir)]
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                 "check": False}  # stdio to /dev/null: the master lives on in the background, holding it
        with lock:
            if key in self._opened:  # opened by a batch that held the lock first
                return
            try:
                if subprocess.run([*args, "-O", "check", target.address], timeout=30, **quiet).returncode \
                        and subprocess.run([*args, target.address, "true"], timeout=60, **quiet).returncode:
                    return  # not reachable now: Ansible's own run reports it, and the next batch tries again
                with self._lock:
                    self._opened.add(key)
            except subprocess.TimeoutExpired:
                pass  # a host that does not answer fails in Ansible's own run, where it is reported and retried

    def _run_in_worker(self, playbook: str, inventory: str, handle: Callable[[dict], None],
                       cancel: threading.Event | None, timeout: float | None) -> tuple[int, str | None]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive():
            worker = self._new_worker()
        rc, error = worker.run(playbook, inventory, {"ANSIBLE_SSH_CONTROL_PATH_DIR": self.control_dir}, handle, cancel,
                               timeout)
        if worker.alive():
            with self._lock:
                self._idle.append(worker)
        return rc, error

    @property
    def workers_started(self) -> int:
        """Ansible workers this executor has started and not yet closed."""
        with self._lock:
            return len(self._all)

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of this executor's workers."""
        with self._lock:
            return [w.process.pid for w in self._all]

    def _new_worker(self) -> _Worker:
        worker = _Worker(_worker_environment(self.control_dir, self.forks, self.nice))
        with self._lock:
            self._all.append(worker)
        return worker

    def _run_with_runner(self, workdir: Path, playbook: str, inventory: str, handle: Callable[[dict], None],
                         cancel: threading.Event | None, timeout: float | None) -> tuple[int, str | None]:
        import ansible_runner  # imported late: loading it costs ~0.3 s and plan/validate never need it

        def keep(event: dict[str, Any]) -> bool:
            handle(event)
            return False  # nothing written to the artifact dir's job_events

        lifeline = {"ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR, "ANSIBLE_CALLBACKS_ENABLED": "orch_lifeline",
                    "ORCH_PARENT_PID": str(os.getpid())}
        runner = ansible_runner.run(
            private_data_dir=str(workdir), playbook=playbook, inventory=inventory,
            envvars={**ansible_environment(self.control_dir, self.forks), **lifeline}, quiet=True,
            suppress_env_files=True,
            event_handler=keep, cancel_callback=cancel.is_set if cancel else None, timeout=timeout,
            settings={"suppress_ansible_output": True})
        rc = runner.rc if runner.rc is not None else 1
        return rc, (_tail(runner) if rc != 0 else None)

    def __enter__(self) -> AnsibleExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the workers, and the SSH masters that ControlPersist kept open for this command."""
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        # all at once, not one after the other: each worker's interpreter and each master take a while to end,
        # and the command's exit waits for the last of them
        for worker in workers:
            worker.ask_to_end()
        _end_masters(Path(self.control_dir))
        for worker in workers:
            worker.close()
        if self._runs is not None:
            shutil.rmtree(self._runs, ignore_errors=True)

    def _runs_dir(self) -> Path:
        """This command's folder for run files (inventories hold operation variables in clear): made
        once, removed by close(), and by the next orch if this one is killed first."""
        with self._lock:
            if self._runs is None:
                self._runs = new_private_folder(self.home / "runs")
            return self._runs


def _with_keys(request: OperationRequest, keys: dict[str, Path]) -> OperationRequest:
    """The request as it runs: its own host's key and those in its ORCH_HOSTS are this batch's key files."""
    target = request.target
    if target.key_credential:
        target = replace(target, key_file=str(keys[target.key_credential]))
    return replace(request, target=target, variables=with_key_files(request.variables, keys))


def _end_masters(control_dir: Path) -> None:
    """Ask the SSH masters whose sockets are in the folder to exit, then remove it."""
    asked = [subprocess.Popen(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "orch-control"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for socket_path in control_dir.glob("*") if socket_path.is_socket()]
    for asking in asked:
        try:
            asking.wait(timeout=10)
        except subprocess.TimeoutExpired:
            asking.kill()
            asking.wait()
    shutil.rmtree(control_dir, ignore_errors=True)


def _tail(runner: Any) -> str:
    try:
        return runner.stdout.read()[-2000:]
    except (OSError, AttributeError, ValueError):
        return f"status {runner.status}"
