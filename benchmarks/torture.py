#!/usr/bin/env python3
"""Crash torture: kill `orch deploy` (or `orch run`) with SIGKILL at random moments, resume until it
succeeds, and check that nothing completed ran twice and that the store stayed consistent.

    python benchmarks/torture.py --trials 20 [--seed S] [--topology PATH] [--json FILE]
    python benchmarks/torture.py --run --trials 10          # `orch run NAME --resume EXEC` with LocalJobs

Deploy mode builds (or takes, with --topology) a topology of local operations: a tree of nodes whose
playbook appends `NODE OPERATION` to a per-trial ledger file, then sleeps 0.2-0.5 s so that kills land
inside operations. A topology given with --topology must take the input `ledger` and write the same
lines. Each trial, in a fresh --home:

  1. `orch deploy` starts as a subprocess in a new session; after a random delay its whole process
     group gets SIGKILL;
  2. right after the kill: the SQLite store is read (operations `done` at that moment, with the
     ledger's count for each), `PRAGMA integrity_check` is run, and every process that orch had
     spawned (watched from /proc while it ran) must be gone: one still alive is an orphan (reported,
     then killed by its pid so the trial can go on);
  3. `orch deploy --resume NAME` runs until it succeeds, killed again at random with probability
     --rekill (at most --max-rekills times); a kill so early that no deployment was recorded is
     followed by the first `orch deploy` again (a "restart");
  4. the end: deployment `deployed`, every operation in the ledger at least once, every operation
     that was `done` at a kill not run again, integrity ok, no instance in a transitional state, no
     run left `started`, no lock left, no orphan.

Before the random trials, one deterministic trial per named point (NAMED_POINTS; --no-named-points
skips them): orch kills itself exactly there (ORCH_KILL_AT, orchestrator/failpoints.py), the resume
runs what is left, and a further resume of the finished deployment must run nothing.

Each deploy trial also plants a password (input `admin_password`, given in an inputs file) and, at
its end, searches every file under its $ORCH_HOME, the store's SQL dump, orch's output and the argv
of every process orch spawned for it (torture_audit.py). Then, unless --no-bad-inputs, every case of
the bad-input corpus (tests/corpus/) goes through `orch validate`.

The report: trials, kills, resumes, restarts, re-executed operations (ledger lines beyond one per
operation: the operations that were running when orch died), orphans, secrets found, bad inputs
tried and handled, failures with details. Exit 1 if any trial failed or a bad input was not handled.
Functions are importable (tests/reliability/test_crash_resume.py uses them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable
NAME = "torture"
OPERATIONS = ("create", "configure", "start")
TRANSITIONAL = {"creating", "configuring", "starting", "stopping", "deleting", "submitting", "executing"}

# ---------------------------------------------------------------------------------------------------------------
# topologies


LEDGER_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Note the operation in the ledger, then work a little
      ansible.builtin.shell: 'echo "{{ NODE }} {{ op }}" >> "{{ ledger }}" && sleep {{ pause }}'
      changed_when: true
"""


def tree_parents(nodes: int) -> dict[str, list[str]]:
    """n0 is the root; node i depends on node (i-1)//2, and the last node also on its left neighbour, so
    the plan has a chain, parallel branches and a join."""
    parents: dict[str, list[str]] = {"n0": []}
    for i in range(1, nodes):
        parents[f"n{i}"] = [f"n{(i - 1) // 2}"]
    if nodes >= 4 and f"n{nodes - 2}" not in parents[f"n{nodes - 1}"]:
        parents[f"n{nodes - 1}"].append(f"n{nodes - 2}")
    return parents


def build_topology(directory: Path, nodes: int = 8, seed: int = 0, pause: tuple[float, float] = (0.2, 0.5)) -> Path:
    """Write DIR/topology.yaml and DIR/playbooks/ledger.yaml: `nodes` nodes, each with create, configure
    and start appending `NODE OPERATION` to the input `ledger` and sleeping 0.2-0.5 s."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "playbooks").mkdir(exist_ok=True)
    (directory / "playbooks" / "ledger.yaml").write_text(LEDGER_PLAYBOOK)
    operations = "\n".join(
        f"        {op}:\n"
        f"          implementation: playbooks/ledger.yaml\n"
        f"          inputs: {{ op: {op}, ledger: {{ get_input: ledger }}, pause: {{ get_property: [ SELF, pause ] }},"
        f" password: {{ get_input: admin_password }} }}"
        for op in OPERATIONS)
    lines = [
        "tosca_definitions_version: tosca_simple_yaml_1_3",
        "description: crash torture - every operation appends NODE OPERATION to the ledger, then sleeps",
        "node_types:",
        "  torture.nodes.Step:",
        "    derived_from: tosca.nodes.Root",
        "    properties:",
        "      pause: { type: float }",
        "    interfaces:",
        "      Standard:",
        "        type: tosca.interfaces.node.lifecycle.Standard",
        operations,
        "topology_template:",
        "  inputs:",
        "    ledger: { type: string }",
        "    admin_password: { type: string, default: \"\" }  # the torture plants a secret here",
        "  node_templates:",
    ]
    for node, parents in tree_parents(nodes).items():
        requirements = ", ".join(f"{{ dependency: {p} }}" for p in parents)
        lines.append(f"    {node}:")
        lines.append("      type: torture.nodes.Step")
        lines.append(f"      properties: {{ pause: {rng.uniform(*pause):.2f} }}")
        if requirements:
            lines.append(f"      requirements: [ {requirements} ]")
    path = directory / "topology.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def build_run_topology(directory: Path, jobs: int = 4, seed: int = 0, pause: tuple[float, float] = (0.3, 0.8)) -> Path:
    """Write DIR/jobs.yaml: LocalJobs j0 → j1 → ... in a chain, and the last one beside them, run by the
    workflow `exec`; each job appends `NODE job` to the ledger, then sleeps."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "tosca_definitions_version: tosca_simple_yaml_1_3",
        "description: crash torture of orch run - LocalJobs that append NODE job to the ledger",
        "topology_template:",
        "  inputs:",
        "    ledger: { type: string }",
        "    jobs_dir: { type: string }",
        "  node_templates:",
    ]
    names = [f"j{i}" for i in range(jobs)]
    for name in names:
        lines += [
            f"    {name}:",
            "      type: orch.nodes.LocalJob",
            "      properties:",
            (f"        command: {{ concat: [ 'echo \"{name} job\" >> ', {{ get_input: ledger }}, "
             f"'; sleep {rng.uniform(*pause):.2f}' ] }}"),
            "        work_dir: { get_input: jobs_dir }",
        ]
    lines += ["  workflows:", "    exec:", "      steps:"]
    chain = names[:-1] if len(names) > 1 else names
    for i, name in enumerate(names):
        lines += [
            f"        run_{name}:",
            f"          target: {name}",
            "          activities:",
            "            - call_operation: Runnable.submit",
            "            - call_operation: Runnable.run",
        ]
        if name in chain and i + 1 < len(chain):
            lines.append(f"          on_success: [ run_{chain[i + 1]} ]")
    path = directory / "jobs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------------------
# processes


def _stat(pid: int) -> tuple[str, int, int, str] | None:
    """(state, ppid, pgid, start time) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2]), fields[19]
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def process_table() -> dict[int, tuple[str, int, int, str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                table[int(entry)] = info
    return table


def descendants(root: int, table: dict[int, tuple[str, int, int, str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Seen:
    pid: int
    start: str
    cmdline: str
    cwd: str = ""


class ProcessWatcher:
    """Notes every process below `root` (pid, start time, command line) while it runs, from /proc."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root = root
        self.interval = interval
        self.seen: dict[tuple[int, str], Seen] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        table = process_table()
        for pid in descendants(self.root, table):
            key = (pid, table[pid][3])
            if key not in self.seen or not self.seen[key].cmdline:
                self.seen[key] = Seen(pid, table[pid][3], _cmdline(pid), _cwd(pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def survivors(self, ignore: Callable[[Seen], bool] = lambda s: False) -> list[Seen]:
        """Processes seen below root that still run (same pid and start time, not a zombie)."""
        alive = []
        for seen in self.seen.values():
            info = _stat(seen.pid)
            if info is not None and info[3] == seen.start and info[0] != "Z" and not ignore(seen):
                alive.append(seen)
        return alive


def alive(seen: Seen) -> bool:
    info = _stat(seen.pid)
    return info is not None and info[3] == seen.start and info[0] != "Z"


def linger(processes: list[Seen], limit: float) -> float:
    """Wait until the processes end by themselves, at most `limit` seconds; how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < limit and any(alive(p) for p in processes):
        time.sleep(0.05)
    return time.monotonic() - began


def summarize(processes: list[Seen]) -> str:
    """'2 x python -m orchestrator.executors.ansible_worker, 1 x /bin/sh -c ...' (first 60 characters)."""
    counts = Counter(" ".join(Path(w).name if i == 0 else w for i, w in enumerate(p.cmdline.split()))[:60] or "?"
                     for p in processes)
    return ", ".join(f"{n} x {c}" for c, n in counts.most_common())


def reap(processes: list[Seen]) -> None:
    """SIGKILL processes that orch spawned and left behind, by pid (their group too when they lead one)."""
    for seen in processes:
        info = _stat(seen.pid)
        if info is None or info[3] != seen.start:
            continue
        try:
            if info[2] == seen.pid:
                os.killpg(seen.pid, signal.SIGKILL)
            else:
                os.kill(seen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            (i := _stat(s.pid)) is not None and i[3] == s.start and i[0] != "Z" for s in processes):
        time.sleep(0.05)


class Orch:
    """One orch command in its own session (so its whole group can be killed), watched from /proc."""

    def __init__(self, home: Path, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.args = args
        self.log = log
        self.started = time.monotonic()
        self._log_file = open(log, "ab")  # noqa: SIM115 - closed when the command ends or is killed
        self._log_file.write(f"\n$ orch {' '.join(args)}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen([PYTHON, "-m", "orchestrator.cli", "--home", str(home), *args],
                                        stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        cwd=ROOT, start_new_session=True,
                                        env={**os.environ, **env} if env else None)
        self.watcher = ProcessWatcher(self.process.pid)

    def kill(self) -> bool:
        """SIGKILL the whole process group; True when it was still running."""
        running = self.process.poll() is None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.watcher.stop()
        self._log_file.close()
        return running

    def wait(self, timeout: float) -> int | None:
        try:
            rc = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.watcher.stop()
        self._log_file.close()
        return rc

    def wait_or_kill_at(self, delay: float) -> bool:
        """Wait `delay` seconds, then kill. True if it was killed while running."""
        try:
            self.process.wait(max(0.0, delay))
        except subprocess.TimeoutExpired:
            pass
        return self.kill()


# ---------------------------------------------------------------------------------------------------------------
# the store, read directly (the script does not import orch)


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db), timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def store_snapshot(home: Path, deployment: str = NAME) -> dict[str, Any]:
    """What the store says now: deployment status, runs by status, instance states, locks, integrity."""
    db = home / "orch.db"
    snap: dict[str, Any] = {"exists": db.exists(), "deployment": None, "integrity": "no store", "done": set(),
                            "started_runs": [], "states": {}, "locks": [], "executions": []}
    if not db.exists():
        return snap
    conn = _connect(db)
    try:
        snap["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "deployments" not in tables:
            return snap
        row = conn.execute("SELECT status FROM deployments WHERE name=?", (deployment,)).fetchone()
        snap["deployment"] = row["status"] if row else None
        snap["done"] = {(r["node"], r["operation"]) for r in conn.execute(
            "SELECT node, operation FROM operation_runs WHERE deployment=? AND status='done'", (deployment,))}
        snap["started_runs"] = [dict(r) for r in conn.execute(
            "SELECT execution_id, step_id, node, operation FROM operation_runs WHERE deployment=? AND status='started'",
            (deployment,))]
        snap["states"] = {r["node"]: r["state"] for r in conn.execute(
            "SELECT node, state FROM instances WHERE deployment=?", (deployment,))}
        snap["locks"] = [dict(r) for r in conn.execute("SELECT * FROM locks WHERE deployment=?", (deployment,))]
        snap["executions"] = [dict(r) for r in conn.execute(
            "SELECT id, workflow, status FROM executions WHERE deployment=? ORDER BY started", (deployment,))]
    finally:
        conn.close()
    return snap


def read_ledger(path: Path) -> Counter:
    if not path.exists():
        return Counter()
    return Counter(tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------------------------
# trials


@dataclass
class TrialResult:
    trial: int
    seed: int
    mode: str
    kills: int = 0
    resumes: int = 0
    restarts: int = 0
    reexecuted: int = 0
    reexecuted_operations: list[str] = field(default_factory=list)
    orphans: int = 0
    kill_delays: list[float] = field(default_factory=list)
    done_at_kills: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    home: str = ""
    secret_places: list[str] = field(default_factory=list)
    point: str = ""  # the named kill point of a deterministic trial

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Settings:
    topology: Path
    kill_window: tuple[float, float]
    rekill: float = 0.5
    max_rekills: int = 2
    timeout: float = 300.0
    grace: float = 0.5  # after the kill, before looking for survivors
    linger: float = 10.0  # how long survivors are given to end by themselves before they are killed
    expected: set[tuple[str, str]] | None = None  # (node, op) the ledger must hold at the end
    mode: str = "deploy"
    secret: str | None = None  # planted as input admin_password (from a file), searched for at the end


def _expected_operations(topology: Path) -> set[tuple[str, str]]:
    import yaml  # orch's own dependency, in its venv

    document = yaml.safe_load(topology.read_text())
    nodes = document["topology_template"]["node_templates"]
    return {(node, op) for node in nodes for op in OPERATIONS}


def _expected_jobs(topology: Path) -> set[tuple[str, str]]:
    import yaml

    document = yaml.safe_load(topology.read_text())
    return {(node, "job") for node in document["topology_template"]["node_templates"]}


class _Trial:
    """The moving parts of one trial: its folder, ledger, result, and what was done at each kill."""

    def __init__(self, number: int, seed: int, settings: Settings, workdir: Path):
        self.settings = settings
        self.rng = random.Random(seed)
        self.dir = workdir / f"trial-{number:03d}"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.home = self.dir / "home"
        self.ledger = self.dir / "ledger.txt"
        self.jobs_dir = self.dir / "jobs"
        self.log = self.dir / "orch.log"
        self.result = TrialResult(number, seed, settings.mode, home=str(self.home))
        # (node, op) -> ledger count when it was first seen done at a kill: it must not grow after
        self.frozen: dict[tuple[str, str], int] = {}
        self.commands: list[Orch] = []

    def fail(self, message: str) -> None:
        self.result.failures.append(message)

    def is_job_process(self, seen: Seen) -> bool:
        """LocalJob processes outlive orch on purpose (a job is not orch's to stop when orch dies)."""
        return seen.cwd.startswith(str(self.jobs_dir))

    def after_kill(self, command: Orch, delay: float) -> None:
        self.result.kills += 1
        self.result.kill_delays.append(round(delay, 2))
        time.sleep(self.settings.grace)
        orphans = command.watcher.survivors(ignore=self.is_job_process)
        if orphans:
            self.result.orphans += len(orphans)
            lingered = linger(orphans, self.settings.linger)
            still = [o for o in orphans if alive(o)]
            fate = (f"{len(still)} still running {self.settings.linger:.0f}s later (killed then)" if still
                    else f"the last one ended by itself {lingered:.1f}s after the kill")
            self.fail(f"kill {self.result.kills} (after {delay:.2f}s of `orch {' '.join(command.args[:2])}`): "
                      f"{len(orphans)} process(es) spawned by orch outlived the SIGKILL of its group "
                      f"({summarize(orphans)}); {fate}")
            reap(still)
        snap = store_snapshot(self.home)
        if snap["exists"] and snap["integrity"] != "ok":
            self.fail(f"kill {self.result.kills}: PRAGMA integrity_check: {snap['integrity']}")
        ledger = read_ledger(self.ledger)
        done = self._done_keys(snap)
        self.result.done_at_kills.append(len(done))
        for key in done:
            if key not in self.frozen:
                self.frozen[key] = ledger.get(key, 0)
                if self.settings.mode == "deploy" and ledger.get(key, 0) == 0:
                    self.fail(f"kill {self.result.kills}: {key[0]} {key[1]} is done in the store but never ran")

    def _done_keys(self, snap: dict[str, Any]) -> set[tuple[str, str]]:
        if self.settings.mode == "deploy":
            return {(node, operation.rsplit(".", 1)[-1]) for node, operation in snap["done"]
                    if operation.startswith("Standard.")}
        # run mode: a job whose submit is done must not be submitted again
        return {(node, "job") for node, operation in snap["done"] if operation == "Runnable.submit"}

    def start(self, args: list[str], env: dict[str, str] | None = None) -> Orch:
        command = Orch(self.home, args, self.log, env)
        self.commands.append(command)
        return command

    def secret_args(self) -> list[str]:
        """The planted secret goes in an inputs file: on a command line, every user could read it."""
        if not self.settings.secret:
            return []
        path = self.dir / "secret-inputs.yaml"
        path.write_text(json.dumps({"admin_password": self.settings.secret}))
        os.chmod(path, 0o600)
        return ["-i", str(path)]

    def search_secret(self) -> None:
        if not self.settings.secret:
            return
        argv = "\n".join(seen.cmdline for command in self.commands for seen in command.watcher.seen.values())
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        places = _audit().secret_hits(self.settings.secret, self.home,
                                      {"orch's output": log, "the argv of a process orch spawned": argv})
        self.result.secret_places = places
        if places:
            self.fail(f"the planted secret was found in: {', '.join(places)}")

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def run_trial(number: int, seed: int, settings: Settings, workdir: Path) -> TrialResult:
    """One deploy trial: kill, resume (killing again at random), check. Never raises for a finding."""
    trial = _Trial(number, seed, settings, workdir)
    started = time.monotonic()
    first = ["deploy", str(settings.topology), "-n", NAME, "--set", f"ledger={trial.ledger}", *trial.secret_args()]
    try:
        def resume() -> list[str] | None:  # None: killed before the deployment was recorded
            return ["deploy", "--resume", NAME] if store_snapshot(trial.home)["deployment"] else None

        _kill_and_resume(trial, first, resume)
        _final_checks_deploy(trial)
        trial.search_secret()
    except Exception as exc:  # noqa: BLE001 - the script reports, it does not crash
        trial.fail(f"torture script error: {type(exc).__name__}: {exc}")
    trial.result.seconds = round(time.monotonic() - started, 1)
    return trial.result


# Where a kill must land to catch what a random delay finds only by luck: the deploy holding its
# lock with nothing run; a batch recorded started but not run; an operation's result recorded, the
# next not started; the deploy's end recorded, the lock not yet released (where a resume once ran
# every operation again).
NAMED_POINTS = ("deploy-locked", "operation-started:3", "operation-done:3", "deploy-finished")


def run_named_trial(number: int, point: str, settings: Settings, workdir: Path) -> TrialResult:
    """orch kills itself at a named point (ORCH_KILL_AT, orchestrator/failpoints.py); then resume
    until done, and a further resume must run nothing. Deterministic: no delay decides anything."""
    trial = _Trial(number, 0, settings, workdir)
    trial.result.point = point
    started = time.monotonic()
    first = ["deploy", str(settings.topology), "-n", NAME, "--set", f"ledger={trial.ledger}", *trial.secret_args()]
    try:
        command = trial.start(first, env={"ORCH_KILL_AT": point})
        rc = command.wait(settings.timeout)
        if rc != -signal.SIGKILL:
            trial.fail(f"`orch deploy` with ORCH_KILL_AT={point} exited {rc}, not killed at the point:\n"
                       + trial.log_tail())
            return trial.result
        trial.after_kill(command, time.monotonic() - command.started)
        resume = ["deploy", "--resume", NAME] if store_snapshot(trial.home)["deployment"] else first
        trial.result.resumes += 1
        rc = trial.start(resume).wait(settings.timeout)
        if rc != 0:
            trial.fail(f"`orch {' '.join(resume)}` after the kill at {point} exited {rc}:\n" + trial.log_tail())
            return trial.result
        before = read_ledger(trial.ledger)
        rc = trial.start(["deploy", "--resume", NAME]).wait(settings.timeout)
        if rc != 0 or read_ledger(trial.ledger) != before:
            trial.fail(f"a resume of the finished deployment exited {rc} and ran "
                       f"{sum(read_ledger(trial.ledger).values()) - sum(before.values())} operations again")
        elif "nothing to resume" not in trial.log.read_text(errors="replace"):
            trial.fail("a resume of the finished deployment did not say it had nothing to resume")
        _final_checks_deploy(trial)
        trial.search_secret()
    except Exception as exc:  # noqa: BLE001 - the script reports, it does not crash
        trial.fail(f"torture script error: {type(exc).__name__}: {exc}")
    finally:
        trial.result.seconds = round(time.monotonic() - started, 1)
    return trial.result


def _kill_and_resume(trial: _Trial, first: list[str], resume_args: Callable[[], list[str] | None]) -> None:
    settings = trial.settings
    delay = trial.rng.uniform(*settings.kill_window)
    command = trial.start(first)
    if not command.wait_or_kill_at(delay):
        # it ended before the kill: nothing to resume unless it failed
        if command.process.returncode != 0:
            trial.fail(f"`orch {' '.join(first[:1])}` ended with {command.process.returncode} before any kill:\n"
                       + trial.log_tail())
        return
    trial.after_kill(command, delay)
    rekills = 0
    while True:
        args = resume_args()
        if args is None:  # killed before anything was recorded: start again
            trial.result.restarts += 1
            args = first
        else:
            trial.result.resumes += 1
        command = trial.start(args)
        if rekills < settings.max_rekills and trial.rng.random() < settings.rekill:
            rekills += 1
            delay = trial.rng.uniform(*settings.kill_window)
            if command.wait_or_kill_at(delay):
                trial.after_kill(command, delay)
                continue
            rc = command.process.returncode
        else:
            rc = command.wait(settings.timeout)
        if rc == 0:
            return
        if rc is None:
            trial.fail(f"`orch {' '.join(args)}` still running after {settings.timeout:.0f}s (killed)")
        else:
            trial.fail(f"`orch {' '.join(args)}` exited {rc}:\n" + trial.log_tail())
        return


def _common_final_checks(trial: _Trial, snap: dict[str, Any]) -> None:
    if snap["integrity"] != "ok":
        trial.fail(f"PRAGMA integrity_check at the end: {snap['integrity']}")
    stuck = {n: s for n, s in snap["states"].items() if s in TRANSITIONAL}
    if stuck:
        trial.fail(f"instances left in a transitional state: {stuck}")
    if snap["started_runs"]:
        trial.fail(f"operation runs left 'started': {snap['started_runs']}")
    if snap["locks"]:
        trial.fail(f"lock left behind: {snap['locks']}")
    running = [e for e in snap["executions"] if e["status"] == "running"]
    if running:
        trial.fail(f"executions left 'running': {running}")


def _ledger_checks(trial: _Trial, expected: set[tuple[str, str]]) -> None:
    ledger = read_ledger(trial.ledger)
    unknown = set(ledger) - expected
    if unknown:
        trial.fail(f"ledger lines for unknown operations: {sorted(unknown)}")
    missing = expected - set(ledger)
    if missing:
        trial.fail(f"operations never run: {sorted(' '.join(k) for k in missing)}")
    for key, count in sorted(ledger.items()):
        if count > 1:
            trial.result.reexecuted += count - 1
            trial.result.reexecuted_operations.append(f"{' '.join(key)} x{count}")
    for key, at_kill in sorted(trial.frozen.items()):
        allowed = max(at_kill, 1)
        if ledger.get(key, 0) > allowed:
            what = "submitted again" if trial.settings.mode == "run" else "run again"
            trial.fail(f"{' '.join(key)} was done in the store at a kill (ledger count {at_kill} then) but was "
                       f"{what}: ledger count {ledger[key]} at the end")


def _final_checks_deploy(trial: _Trial) -> None:
    snap = store_snapshot(trial.home)
    if snap["deployment"] != "deployed":
        trial.fail(f"deployment status at the end: {snap['deployment']!r} (expected 'deployed')")
    _common_final_checks(trial, snap)
    not_started = {n: s for n, s in snap["states"].items() if s != "started"}
    if not_started and snap["deployment"] == "deployed":
        trial.fail(f"deployed, but instances not started: {not_started}")
    expected = trial.settings.expected or _expected_operations(trial.settings.topology)
    _ledger_checks(trial, expected)
    leftovers = [s for s in _processes_mentioning(trial.dir) if not trial.is_job_process(s)]
    if leftovers:
        trial.fail("processes still running for this trial at the end: "
                   + "; ".join(f"pid {s.pid}: {s.cmdline[:160]}" for s in leftovers))
        reap(leftovers)


def _processes_mentioning(directory: Path) -> list[Seen]:
    text = str(directory)
    found = []
    for pid, (state, _, _, start) in process_table().items():
        if pid == os.getpid() or state == "Z":
            continue
        cmdline = _cmdline(pid)
        if text in cmdline:
            found.append(Seen(pid, start, cmdline, _cwd(pid)))
    return found


# -- run mode ---------------------------------------------------------------------------------------------------


def _latest_execution(home: Path, workflow: str, deployment: str = NAME) -> str | None:
    db = home / "orch.db"
    if not db.exists():
        return None
    conn = _connect(db)
    try:
        row = conn.execute("SELECT id FROM executions WHERE deployment=? AND workflow=? ORDER BY started DESC LIMIT 1",
                           (deployment, workflow)).fetchone()
        return row["id"] if row else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def run_trial_run(number: int, seed: int, settings: Settings, workdir: Path) -> TrialResult:
    """One `orch run` trial: deploy (not killed), run killed at random, `run --resume EXEC` until done."""
    trial = _Trial(number, seed, settings, workdir)
    started = time.monotonic()
    try:
        trial.jobs_dir.mkdir()
        deploy = trial.start(["deploy", str(settings.topology), "-n", NAME, "--set", f"ledger={trial.ledger}",
                              "--set", f"jobs_dir={trial.jobs_dir}"])
        rc = deploy.wait(settings.timeout)
        if rc != 0:
            trial.fail(f"deploy before the runs exited {rc}:\n" + trial.log_tail())
        else:
            def resume() -> list[str] | None:
                execution = _latest_execution(trial.home, "exec")
                return ["run", NAME, "--resume", execution] if execution else None

            _kill_and_resume(trial, ["run", NAME, "-w", "exec"], resume)
            _final_checks_run(trial)
    except Exception as exc:  # noqa: BLE001
        trial.fail(f"torture script error: {type(exc).__name__}: {exc}")
    trial.result.seconds = round(time.monotonic() - started, 1)
    return trial.result


def _final_checks_run(trial: _Trial) -> None:
    # jobs left running by a killed orch finish by themselves (they only sleep): let them write
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(trial.is_job_process(s) for s in _processes_in(trial.jobs_dir)):
        time.sleep(0.1)
    snap = store_snapshot(trial.home)
    runs = [e for e in snap["executions"] if e["workflow"] == "exec"]
    if not runs or runs[-1]["status"] != "done":
        trial.fail(f"executions of exec at the end: {runs}")
    _common_final_checks(trial, snap)
    _ledger_checks(trial, trial.settings.expected or _expected_jobs(trial.settings.topology))
    leftovers = [s for s in _processes_mentioning(trial.dir) if not trial.is_job_process(s)]
    if leftovers:
        trial.fail("processes still running for this trial at the end: "
                   + "; ".join(f"pid {s.pid}: {s.cmdline[:160]}" for s in leftovers))
        reap(leftovers)


def _processes_in(directory: Path) -> list[Seen]:
    found = []
    for pid, (state, _, _, start) in process_table().items():
        cwd = _cwd(pid)
        if state != "Z" and cwd.startswith(str(directory)):
            found.append(Seen(pid, start, _cmdline(pid), cwd))
    return found


# ---------------------------------------------------------------------------------------------------------------
# calibration, the whole torture, the report


def calibrate(settings: Settings, workdir: Path) -> tuple[float, list[str]]:
    """One uninterrupted deploy (or deploy + run): how long it takes, and what went wrong if anything."""
    trial = _Trial(0, 0, settings, workdir)  # folder trial-000, removed afterwards
    problems: list[str] = []
    if settings.mode == "run":
        trial.jobs_dir.mkdir()
        rc = trial.start(["deploy", str(settings.topology), "-n", NAME, "--set", f"ledger={trial.ledger}",
                          "--set", f"jobs_dir={trial.jobs_dir}"]).wait(settings.timeout)
        if rc != 0:
            return 0.0, [f"calibration deploy exited {rc}:\n{trial.log_tail()}"]
        args = ["run", NAME, "-w", "exec"]
    else:
        args = ["deploy", str(settings.topology), "-n", NAME, "--set", f"ledger={trial.ledger}"]
    began = time.monotonic()
    rc = trial.start(args).wait(settings.timeout)
    took = time.monotonic() - began
    if rc != 0:
        problems.append(f"calibration `orch {args[0]}` exited {rc}:\n{trial.log_tail()}")
    else:
        if settings.mode == "run":
            _final_checks_run(trial)
        else:
            _final_checks_deploy(trial)
        problems += trial.result.failures
        if trial.result.reexecuted:
            problems.append(f"calibration re-executed operations without any kill: "
                            f"{trial.result.reexecuted_operations}")
    if not problems:
        shutil.rmtree(trial.dir, ignore_errors=True)
    return took, problems


def torture(trials: int, seed: int, topology: Path | None = None, workdir: Path | None = None, *,
            mode: str = "deploy", nodes: int = 8, kill_window: tuple[float, float] | None = None,
            rekill: float = 0.5, max_rekills: int = 2, keep: bool = False, bad_inputs: bool = False,
            points: tuple[str, ...] = (), progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the trials; return the report (a dict, JSON-ready)."""
    say = progress or (lambda message: None)
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="orch-torture-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if topology is None:
        topology = build_run_topology(workdir / "topology", seed=seed) if mode == "run" \
            else build_topology(workdir / "topology", nodes=nodes, seed=seed)
    settings = Settings(topology=topology.resolve(), kill_window=kill_window or (0.0, 0.0), rekill=rekill,
                        max_rekills=max_rekills, mode=mode)
    if mode == "deploy" and _declares_input(settings.topology, "admin_password"):
        settings.secret = "torture-secret-" + secrets.token_hex(16)
    settings.expected = _expected_jobs(settings.topology) if mode == "run" else _expected_operations(settings.topology)
    report: dict[str, Any] = {"mode": mode, "trials": trials, "seed": seed, "topology": str(settings.topology),
                              "operations": len(settings.expected), "workdir": str(workdir)}
    if kill_window is None:
        took, problems = calibrate(settings, workdir)
        report["calibration_s"] = round(took, 1)
        say(f"calibration: an uninterrupted {mode} took {took:.1f}s"
            + (f"; problems: {problems}" if problems else ""))
        if problems:
            report.update({"kills": 0, "resumes": 0, "restarts": 0, "reexecuted": 0, "orphans": 0,
                           "failed_trials": trials, "failures": [{"trial": 0, "failures": problems}],
                           "results": []})
            return report
        # random moments across the whole command: from its start (before anything ran) to near its end
        settings.kill_window = (0.1, max(1.0, took * 0.95))
    report["kill_window_s"] = [round(x, 2) for x in settings.kill_window]
    master = random.Random(seed)
    results: list[TrialResult] = []
    for number, point in enumerate(points if mode == "deploy" else (), start=trials + 1):
        result = run_named_trial(number, point, settings, workdir)
        results.append(result)
        say(f"named point {point}: {'ok' if result.ok else 'FAILED'} - re-executed {result.reexecuted}"
            f"{' (' + ', '.join(result.reexecuted_operations) + ')' if result.reexecuted_operations else ''}, "
            f"{result.seconds}s" + ("".join(f"\n    - {f}" for f in result.failures)))
        if result.ok and not keep:
            shutil.rmtree(Path(result.home).parent, ignore_errors=True)
    for number in range(1, trials + 1):
        trial_seed = master.randrange(2 ** 31)
        runner = run_trial_run if mode == "run" else run_trial
        result = runner(number, trial_seed, settings, workdir)
        results.append(result)
        say(f"trial {number}/{trials}: {'ok' if result.ok else 'FAILED'} - kills {result.kills}, "
            f"resumes {result.resumes}, restarts {result.restarts}, re-executed {result.reexecuted}"
            f"{' (' + ', '.join(result.reexecuted_operations) + ')' if result.reexecuted_operations else ''}, "
            f"{result.seconds}s" + ("".join(f"\n    - {f}" for f in result.failures)))
        if result.ok and not keep:
            shutil.rmtree(Path(result.home).parent, ignore_errors=True)
    report.update({
        "kills": sum(r.kills for r in results),
        "resumes": sum(r.resumes for r in results),
        "restarts": sum(r.restarts for r in results),
        "reexecuted": sum(r.reexecuted for r in results),
        "orphans": sum(r.orphans for r in results),
        "secret_planted": settings.secret is not None,
        "secrets_found": sum(len(r.secret_places) for r in results),
        "failed_trials": sum(1 for r in results if not r.ok),
        "named_points": [r.point for r in results if r.point],
        "failures": [{"trial": r.trial, "seed": r.seed, "point": r.point, "home": r.home, "failures": r.failures}
                     for r in results if not r.ok],
        "results": [asdict(r) for r in results],
    })
    if bad_inputs:
        say("bad inputs: every case of tests/corpus through `orch validate`")
        report["bad_inputs"] = _audit().bad_inputs()
    if own_workdir and not keep and not report["failed_trials"]:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def _declares_input(topology: Path, name: str) -> bool:
    import yaml

    document = yaml.safe_load(topology.read_text())
    return name in ((document.get("topology_template") or {}).get("inputs") or {})


def _audit() -> Any:
    """torture_audit.py, beside this file (loaded by path: benchmarks/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("orch_torture_audit", Path(__file__).with_name("torture_audit.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(report: dict[str, Any]) -> str:
    lines = [
        (f"orch crash torture ({report['mode']}): {report['trials']} trials, seed {report['seed']}, "
         f"{report['operations']} operations per {report['mode']}"),
        f"  kill window      {report.get('kill_window_s', '-')} s after start"
        + (f" (uninterrupted {report['mode']}: {report['calibration_s']} s)" if 'calibration_s' in report else ""),
        f"  trials           {report['trials']} random"
        + (f", {len(report['named_points'])} killed at named points ({', '.join(report['named_points'])})"
           if report.get("named_points") else ""),
        f"  kills            {report['kills']}",
        f"  resumes          {report['resumes']}",
        f"  restarts         {report['restarts']}  (killed before the deployment/execution was recorded)",
        f"  re-executed ops  {report['reexecuted']}  (ledger lines beyond one per operation)",
        f"  orphans          {report['orphans']}  (processes of orch alive after SIGKILL of its group)",
        (f"  secrets found    {report['secrets_found']}  (a planted password searched for in $ORCH_HOME, the store, "
         "orch's output, every argv)" if report.get("secret_planted") else "  secrets found    - (none planted)"),
        f"  failed trials    {report['failed_trials']}",
    ]
    if "bad_inputs" in report:
        bad = report["bad_inputs"]
        lines.append(f"  bad inputs       {bad['tried']} tried, {bad['handled']} handled (exit 2, no traceback, "
                     f"file named, nothing written)")
        lines += [f"    - {r['case']}: {', '.join(r['problems'])}" for r in bad["not_handled"]]
    for failure in report["failures"]:
        lines.append(f"  trial {failure['trial']} (seed {failure.get('seed', '-')}, {failure.get('home', '')}):")
        lines += [f"    - {f}" for f in failure["failures"]]
    bad = report.get("bad_inputs", {})
    lines.append("result: " + ("OK" if not report["failed_trials"] and bad.get("tried", 0) == bad.get("handled", 0)
                               else "FAILED"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--topology", type=Path, help="a topology taking input `ledger` (default: built)")
    parser.add_argument("--nodes", type=int, default=8, help="nodes of the built topology (default 8)")
    parser.add_argument("--run", action="store_true", help="torture `orch run` of LocalJobs instead of deploy")
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument("--workdir", type=Path, help="keep trials here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folders of trials that passed")
    parser.add_argument("--rekill", type=float, default=0.5, help="chance a resume is killed too (default 0.5)")
    parser.add_argument("--max-rekills", type=int, default=2, help="kills of resumes per trial (default 2)")
    parser.add_argument("--no-bad-inputs", action="store_true", help="skip the bad-input corpus")
    parser.add_argument("--no-named-points", action="store_true",
                        help="skip the deterministic trials killed at named points (" + ", ".join(NAMED_POINTS) + ")")
    parser.add_argument("--kill-window", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="seconds after start (default: from an uninterrupted calibration run)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2 ** 31)
    report = torture(args.trials, seed, args.topology, args.workdir, mode="run" if args.run else "deploy",
                     nodes=args.nodes, kill_window=tuple(args.kill_window) if args.kill_window else None,
                     rekill=args.rekill, max_rekills=args.max_rekills, keep=args.keep,
                     bad_inputs=not args.no_bad_inputs, points=() if args.no_named_points else NAMED_POINTS,
                     progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    bad = report.get("bad_inputs", {})
    return 1 if report["failed_trials"] or bad.get("tried", 0) != bad.get("handled", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
