"""Locks: deploy, run and undeploy of one deployment exclude each other across processes, with a clear
message (exit 2, naming the running command and its pid); different deployments run side by side; a
lock left by an orch that was SIGKILLed, or naming a pid that now belongs to another process, does not
block.

Operations here hold while a flag file exists, so a test decides exactly how long a command runs:
it waits until the operation is inside its task (its ledger line is written), tries the competing
commands, then removes the flag.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]

HOLD_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Note the operation
      ansible.builtin.shell: 'echo "{{ NODE }} {{ op }} $(date +%s.%N)" >> "{{ ledger }}"'
    - name: Hold while the flag file exists (at most 2 minutes)
      ansible.builtin.shell: 'for i in $(seq 1 1200); do [ -e "{{ flag }}" ] || exit 0; sleep 0.1; done'
"""

TOPOLOGY = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  lock.nodes.Held:
    derived_from: tosca.nodes.Root
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create:
          implementation: playbooks/hold.yaml
          inputs: { op: create, ledger: { get_input: ledger }, flag: { get_input: flag } }
        delete:
          implementation: playbooks/hold.yaml
          inputs: { op: delete, ledger: { get_input: ledger }, flag: { get_input: flag } }
topology_template:
  inputs:
    ledger: { type: string }
    flag: { type: string }
    jobs_dir: { type: string }
  node_templates:
    held:
      type: lock.nodes.Held
    job:
      type: orch.nodes.LocalJob
      properties:
        work_dir: { get_input: jobs_dir }
        command:
          concat:
            - 'echo "job run $(date +%s.%N)" >> '
            - { get_input: ledger }
            - '; i=0; while [ -e '
            - { get_input: flag }
            - ' ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done'
  workflows:
    exec:
      steps:
        run_job:
          target: job
          activities:
            - call_operation: Runnable.submit
            - call_operation: Runnable.run
"""


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("locks")
    (directory / "playbooks").mkdir()
    (directory / "playbooks" / "hold.yaml").write_text(HOLD_PLAYBOOK)
    (directory / "locks.yaml").write_text(TOPOLOGY)
    return directory / "locks.yaml"


@dataclass
class Deployment:
    """One deployment's files: its home (shared by the deployments of a test), ledger, flag, jobs folder."""

    home: Path
    name: str
    ledger: Path
    flag: Path
    jobs: Path
    topology: Path

    def deploy_args(self) -> list[str]:
        return ["deploy", str(self.topology), "-n", self.name, "--set", f"ledger={self.ledger}",
                "--set", f"flag={self.flag}", "--set", f"jobs_dir={self.jobs}"]

    def hold(self) -> None:
        self.flag.write_text("hold\n")

    def release(self) -> None:
        self.flag.unlink(missing_ok=True)

    def lines(self, what: str) -> list[str]:
        if not self.ledger.exists():
            return []
        return [line for line in self.ledger.read_text().splitlines() if line.startswith(what)]


def make(tmp_path: Path, topology: Path, name: str = "locked", home: Path | None = None) -> Deployment:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "jobs").mkdir()
    return Deployment(home or tmp_path / "home", name, folder / "ledger.txt", folder / "flag", folder / "jobs",
                      topology)


def orch(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """One orch command; `timeout` is a hang detector (it fails the test with a message), not a speed limit."""
    try:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
        raise AssertionError(f"orch {' '.join(args)} did not finish in {timeout:g} s:\n{output[-3000:]}") from None


def spawn(home: Path, *args: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_until(predicate, what: str, process: subprocess.Popen | None = None, log: Path | None = None,
               timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"orch ended ({process.returncode}) before {what}:\n"
                                 + (log.read_text(errors="replace")[-3000:] if log else ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: not there after {timeout:g} s")
        time.sleep(0.05)


def finish(process: subprocess.Popen, log: Path, timeout: float = 240) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError("orch did not end:\n" + log.read_text(errors="replace")[-3000:]) from None


def assert_busy(result: subprocess.CompletedProcess, command: str, pid: int) -> None:
    """Exit 2, one clear message naming what runs and its pid, no traceback."""
    message = result.stderr + result.stdout
    assert result.returncode == 2, message
    assert "Traceback" not in message
    assert f"'{command}'" in message or f"'{command} " in message, f"the running command is not named: {message}"
    assert str(pid) in message, f"the pid {pid} of the running command is not named: {message}"


def deployed(tmp_path: Path, topology: Path, name: str = "locked") -> Deployment:
    d = make(tmp_path, topology, name)
    d.release()
    result = orch(d.home, *d.deploy_args())
    assert result.returncode == 0, result.stderr
    return d


# -- deploy holds the lock --------------------------------------------------------------------------------------


def test_a_running_deploy_excludes_deploy_resume_and_undeploy(tmp_path, topology):
    d = make(tmp_path, topology)
    d.hold()
    log = tmp_path / "deploy.log"
    first = spawn(d.home, *d.deploy_args(), log=log)
    try:
        wait_until(lambda: d.lines("held create"), "the deploy's operation to run", first, log)
        assert_busy(orch(d.home, *d.deploy_args()), "deploy", first.pid)
        assert_busy(orch(d.home, "deploy", "--resume", d.name), "deploy", first.pid)
        assert_busy(orch(d.home, "undeploy", d.name), "deploy", first.pid)
    finally:
        d.release()
    assert finish(first, log) == 0, log.read_text()
    assert len(d.lines("held create")) == 1, "a refused command ran an operation"
    status = orch(d.home, "status", d.name, "--json")
    assert '"deployed"' in status.stdout


def test_run_during_a_deploy_names_the_running_deploy(tmp_path, topology):
    d = make(tmp_path, topology)
    d.hold()
    log = tmp_path / "deploy.log"
    first = spawn(d.home, *d.deploy_args(), log=log)
    try:
        wait_until(lambda: d.lines("held create"), "the deploy's operation to run", first, log)
        assert_busy(orch(d.home, "run", d.name, "-w", "exec"), "deploy", first.pid)
    finally:
        d.release()
        finish(first, log)


def test_run_during_a_deploy_is_refused_and_runs_nothing(tmp_path, topology):
    """Whatever the message, a run during a deploy exits 2 and starts no job."""
    d = make(tmp_path, topology)
    d.hold()
    log = tmp_path / "deploy.log"
    first = spawn(d.home, *d.deploy_args(), log=log)
    try:
        wait_until(lambda: d.lines("held create"), "the deploy's operation to run", first, log)
        refused = orch(d.home, "run", d.name, "-w", "exec")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    finally:
        d.release()
    assert finish(first, log) == 0
    assert d.lines("job") == []


# -- run holds the lock -----------------------------------------------------------------------------------------


def test_a_running_run_excludes_deploy_undeploy_and_another_run(tmp_path, topology):
    d = deployed(tmp_path, topology)
    d.hold()
    log = tmp_path / "run.log"
    running = spawn(d.home, "run", d.name, "-w", "exec", log=log)
    try:
        wait_until(lambda: d.lines("job run"), "the job to run", running, log)
        assert_busy(orch(d.home, *d.deploy_args()), "run exec", running.pid)
        assert_busy(orch(d.home, "deploy", "--resume", d.name), "run exec", running.pid)
        assert_busy(orch(d.home, "undeploy", d.name), "run exec", running.pid)
        assert_busy(orch(d.home, "run", d.name, "-w", "exec"), "run exec", running.pid)
    finally:
        d.release()
    assert finish(running, log) == 0, log.read_text()
    assert len(d.lines("job run")) == 1 and len(d.lines("held create")) == 1


# -- undeploy holds the lock ------------------------------------------------------------------------------------


def test_a_running_undeploy_excludes_deploy(tmp_path, topology):
    d = deployed(tmp_path, topology)
    d.hold()
    log = tmp_path / "undeploy.log"
    undeploy = spawn(d.home, "undeploy", d.name, log=log)
    try:
        wait_until(lambda: d.lines("held delete"), "the undeploy's operation to run", undeploy, log)
        assert_busy(orch(d.home, *d.deploy_args()), "undeploy", undeploy.pid)
        assert_busy(orch(d.home, "deploy", "--resume", d.name), "undeploy", undeploy.pid)
        assert_busy(orch(d.home, "undeploy", d.name), "undeploy", undeploy.pid)
    finally:
        d.release()
    assert finish(undeploy, log) == 0, log.read_text()
    assert len(d.lines("held create")) == 1 and len(d.lines("held delete")) == 1
    assert orch(d.home, "list").stdout.strip() == "no deployments"


def test_run_during_an_undeploy_names_the_running_undeploy(tmp_path, topology):
    d = deployed(tmp_path, topology)
    d.hold()
    log = tmp_path / "undeploy.log"
    undeploy = spawn(d.home, "undeploy", d.name, log=log)
    try:
        wait_until(lambda: d.lines("held delete"), "the undeploy's operation to run", undeploy, log)
        assert_busy(orch(d.home, "run", d.name, "-w", "exec"), "undeploy", undeploy.pid)
    finally:
        d.release()
        finish(undeploy, log)


# -- side by side, and at the same instant -----------------------------------------------------------------------


def test_two_deployments_deploy_side_by_side(tmp_path, topology):
    home = tmp_path / "home"
    a, b = make(tmp_path, topology, "alpha", home), make(tmp_path, topology, "beta", home)
    a.hold()
    b.hold()
    logs = tmp_path / "alpha.log", tmp_path / "beta.log"
    first, second = spawn(home, *a.deploy_args(), log=logs[0]), spawn(home, *b.deploy_args(), log=logs[1])
    try:
        # both operations are inside their tasks at the same moment: they overlap, neither waits for the other
        wait_until(lambda: a.lines("held create") and b.lines("held create"), "both operations to run", timeout=240)
        assert first.poll() is None and second.poll() is None
    finally:
        a.release()
        b.release()
    assert finish(first, logs[0]) == 0, logs[0].read_text()
    assert finish(second, logs[1]) == 0, logs[1].read_text()
    store = Store(home)
    try:
        spans = {d: next((r.started, r.ended) for r in store.operation_runs(d) if r.step_id == "held.create")
                 for d in ("alpha", "beta")}
    finally:
        store.close()
    (a0, a1), (b0, b1) = spans["alpha"], spans["beta"]
    assert a0 < b1 and b0 < a1, f"the two deployments' operations did not overlap: {spans}"
    listing = orch(home, "list", "--json").stdout
    assert listing.count('"deployed"') == 2, listing


def test_two_deploys_of_one_deployment_started_at_once(tmp_path, topology):
    """Started at the same instant: exactly one deploys, the other is refused naming it."""
    d = make(tmp_path, topology)
    d.hold()
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    processes = [spawn(d.home, *d.deploy_args(), log=log) for log in logs]
    try:
        wait_until(lambda: any(p.poll() is not None for p in processes), "one of the two to be refused",
                   timeout=180)
        refused = next(i for i, p in enumerate(processes) if p.poll() is not None)
        winner = 1 - refused
        assert processes[refused].returncode == 2, logs[refused].read_text()
        text = logs[refused].read_text()
        assert "deploy" in text and str(processes[winner].pid) in text, text
    finally:
        d.release()
    assert finish(processes[winner], logs[winner]) == 0, logs[winner].read_text()
    assert len(d.lines("held create")) == 1


# -- stale locks -------------------------------------------------------------------------------------------------


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def lock_rows(home: Path) -> list[tuple]:
    """The deployments' locks as the store protocol shows them: (deployment, pid, command)."""
    store = Store(home)
    try:
        return [(lock.deployment, lock.pid, lock.command)
                for lock in (store.lock(d.name) for d in store.deployments()) if lock is not None]
    finally:
        store.close()


def test_a_lock_left_by_a_sigkilled_deploy_does_not_block(tmp_path, topology):
    d = make(tmp_path, topology)
    d.hold()
    log = tmp_path / "deploy.log"
    first = spawn(d.home, *d.deploy_args(), log=log)
    wait_until(lambda: d.lines("held create"), "the deploy's operation to run", first, log)
    kill_group(first)
    d.release()  # also lets anything the killed orch left behind end
    assert [row[1] for row in lock_rows(d.home)] == [first.pid], "the killed deploy's lock row should be there"
    # the resume takes the lock over at once: it is inside the operation again, holding the lock under its
    # own pid, while the dead deploy's row is still what it found (an orch that waited for the stale lock
    # to expire would not get there; the bounded wait is a hang detector, not a speed limit)
    d.hold()
    log = tmp_path / "resume.log"
    resume = spawn(d.home, "deploy", "--resume", d.name, log=log)
    try:
        wait_until(lambda: len(d.lines("held create")) == 2, "the resumed deploy to run the operation again",
                   resume, log)
        assert [row[1] for row in lock_rows(d.home)] == [resume.pid], lock_rows(d.home)
    finally:
        d.release()
    assert finish(resume, log) == 0, log.read_text()
    assert "busy" not in log.read_text()
    assert lock_rows(d.home) == []
    assert '"deployed"' in orch(d.home, "status", d.name, "--json").stdout


def test_a_lock_left_by_a_sigkilled_run_does_not_block(tmp_path, topology):
    d = deployed(tmp_path, topology)
    d.hold()
    log = tmp_path / "run.log"
    running = spawn(d.home, "run", d.name, "-w", "exec", log=log)
    wait_until(lambda: d.lines("job run"), "the job to run", running, log)
    kill_group(running)
    d.release()
    assert [row[1] for row in lock_rows(d.home)] == [running.pid]
    again = orch(d.home, "undeploy", d.name)
    assert again.returncode == 0, again.stderr
    assert "busy" not in again.stderr


def _process_start(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def _plant_lock(home: Path, name: str, pid: int, start: str, command: str) -> None:
    """Fault injection: the row a crashed orch of an older version (a lock named by pid alone) leaves;
    no store method writes such a row, so it is planted with SQL."""
    conn = sqlite3.connect(home / "orch.db", timeout=30)
    try:
        conn.execute("INSERT OR REPLACE INTO locks (deployment, pid, process_start, command, since) VALUES (?,?,?,?,?)",
                     (name, pid, start, command, time.time()))
        conn.commit()
    finally:
        conn.close()


def test_a_lock_naming_a_reused_pid_does_not_block_and_a_live_holder_does(tmp_path, topology):
    """The lock names its holder by pid and kernel start time: a live process with that pid but another
    start time (the pid was reused) does not hold it; the same pid and start time does."""
    d = deployed(tmp_path, topology)
    other = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        _plant_lock(d.home, d.name, other.pid, "1", "deploy")  # a pid now used by another process
        reused = orch(d.home, "undeploy", d.name)
        assert reused.returncode == 0, reused.stderr
        d2 = deployed(tmp_path, topology, "again")
        _plant_lock(d2.home, d2.name, other.pid, _process_start(other.pid), "undeploy")  # alive, same process
        assert_busy(orch(d2.home, "undeploy", d2.name), "undeploy", other.pid)
        assert_busy(orch(d2.home, "run", d2.name, "-w", "exec"), "undeploy", other.pid)
    finally:
        other.kill()
        other.wait()
    # the holder died: the lock no longer blocks
    done = orch(d2.home, "undeploy", d2.name)
    assert done.returncode == 0, done.stderr
