"""Crash and resume: orch killed with SIGKILL (its whole process group) at random and at chosen moments,
then `orch deploy --resume` / `orch run --resume`: completed operations are kept and not run again, the
one that was running is run again, the store stays consistent, nothing orch spawned outlives it.

The random part is benchmarks/torture.py (its functions, a few trials with a fixed seed); the chosen
moments poll the store until a given operation is recorded `started` and kill then.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_torture():
    spec = importlib.util.spec_from_file_location("orch_torture", ROOT / "benchmarks" / "torture.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


torture = _load_torture()


def orch(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL,
                          check=False)


def runs(home: Path, deployment: str = torture.NAME) -> list[dict]:
    conn = sqlite3.connect(home / "orch.db", timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM operation_runs WHERE deployment=? ORDER BY id",
                                              (deployment,))]
    finally:
        conn.close()


def wait_for(predicate, timeout: float, what: str, command: torture.Orch | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if command is not None and command.process.poll() is not None:
            raise AssertionError(f"orch ended ({command.process.returncode}) before {what}:\n"
                                 + command.log.read_text(errors="replace")[-3000:])
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def started_and_running(home: Path, ledger: Path, step_id: str, node: str, op: str):
    """The operation is recorded `started` in the store and its playbook is inside its task (the ledger
    line is written before the sleep): killing now kills it in the middle."""
    def check():
        if not (home / "orch.db").exists():
            return False
        try:
            recorded = any(r["step_id"] == step_id and r["status"] == "started" for r in runs(home))
        except sqlite3.Error:
            return False
        return recorded and torture.read_ledger(ledger).get((node, op), 0) >= 1
    return check


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Path:
    # n0 → n1, n0 → n2: 9 operations, a chain and two parallel branches; pauses 0.6-0.9 s so that a
    # kill after the ledger line certainly lands inside the operation
    return torture.build_topology(tmp_path_factory.mktemp("topology"), nodes=3, seed=7, pause=(0.6, 0.9))


def test_torture_trials_with_a_fixed_seed(tmp_path):
    """Three trials of the torture script: random kills (resumes killed too), then every check of
    the script, orphaned processes included."""
    report = torture.torture(3, seed=20240611, workdir=tmp_path / "torture", nodes=3, kill_window=(0.5, 9.0),
                             rekill=0.5, max_rekills=1)
    print(torture.render(report))
    assert report["kills"] >= 1, "no kill landed while orch was running"
    findings = [f"trial {t['trial']}: {f}" for t in report["failures"] for f in t["failures"]]
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize("point", torture.NAMED_POINTS)
def test_a_kill_at_a_named_point_is_resumed_and_a_further_resume_runs_nothing(point, topology, tmp_path):
    """Deterministic kills (orch kills itself at the point): what was done is not run again, the
    deployment ends deployed, and resuming it once more runs no operation and says so."""
    settings = torture.Settings(topology=topology.resolve(), kill_window=(0.0, 0.0),
                                expected=torture._expected_operations(topology))
    result = torture.run_named_trial(1, point, settings, tmp_path / "named")
    assert result.kills == 1, result.failures
    assert result.ok, "\n".join(result.failures)
    if point == "deploy-finished":
        assert result.reexecuted == 0, result.reexecuted_operations


def _deploy_killed_at(home: Path, ledger: Path, topology: Path, step_id: str, node: str, op: str,
                      log: Path) -> torture.Orch:
    command = torture.Orch(home, ["deploy", str(topology), "-n", torture.NAME, "--set", f"ledger={ledger}"], log)
    try:
        wait_for(started_and_running(home, ledger, step_id, node, op), 120, f"{step_id} running", command)
    finally:
        command.kill()
    return command


def test_operation_running_at_the_kill_is_run_again_and_its_predecessors_are_not(topology, tmp_path):
    home, ledger = tmp_path / "home", tmp_path / "ledger.txt"
    command = _deploy_killed_at(home, ledger, topology, "n1.configure", "n1", "configure", tmp_path / "orch.log")
    torture.reap(command.watcher.survivors())  # asserted by another test; here they must not interfere
    before = {(r["node"], r["operation"]): r["status"] for r in runs(home)}
    assert before[("n1", "Standard.configure")] == "started"
    predecessors = [("n0", "create"), ("n0", "configure"), ("n0", "start"), ("n1", "create")]
    assert all(before[(n, f"Standard.{o}")] == "done" for n, o in predecessors)

    resumed = orch(home, "deploy", "--resume", torture.NAME)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr

    counts = torture.read_ledger(ledger)
    assert counts[("n1", "configure")] == 2, "the interrupted operation was not run again"
    for key in predecessors:
        assert counts[key] == 1, f"{key} was done before the kill and ran again"
    assert set(counts) == {(f"n{i}", op) for i in range(3) for op in torture.OPERATIONS}
    # n2's branch runs beside n1's: whatever of it was running at the kill ran again, the rest once
    interrupted = {(n, o.split(".")[1]) for (n, o), status in before.items() if status == "started"}
    assert all(count == 1 for key, count in counts.items() if key not in interrupted), counts
    assert all(counts[key] <= 2 for key in interrupted), counts

    history = [(r["step_id"], r["status"]) for r in runs(home)]
    assert history.count(("n1.configure", "interrupted")) == 1 and history.count(("n1.configure", "done")) == 1
    for node, op in predecessors:  # one run each, the one from before the kill
        assert [s for step, s in history if step == f"{node}.{op}"] == ["done"]
    snap = torture.store_snapshot(home)
    assert snap["integrity"] == "ok" and snap["deployment"] == "deployed"
    assert set(snap["states"].values()) == {"started"} and not snap["locks"] and not snap["started_runs"]
    status = orch(home, "status", torture.NAME, "--json")
    assert status.returncode == 0 and '"deployed"' in status.stdout


@pytest.mark.parametrize("ansible", ["worker", "runner"])
def test_sigkill_leaves_no_process_of_orch_behind(tmp_path, monkeypatch, ansible):
    """Both ways orch runs Ansible: its long-lived workers, and ansible-runner (ORCH_ANSIBLE=runner)."""
    if ansible == "runner":
        monkeypatch.setenv("ORCH_ANSIBLE", "runner")
    # one node whose operations last 5 s: killed in the first of them, what orch spawned for it is
    # certainly still at work 1 s later unless the kill took it along
    topology = torture.build_topology(tmp_path / "topology", nodes=1, pause=(5.0, 5.0))
    home, ledger = tmp_path / "home", tmp_path / "ledger.txt"
    command = _deploy_killed_at(home, ledger, topology, "n0.create", "n0", "create", tmp_path / "orch.log")
    time.sleep(1.0)  # more than enough for anything that notices its parent died
    survivors = command.watcher.survivors()
    torture.reap(survivors)
    assert not survivors, "alive 1 s after SIGKILL of orch's group: " + "; ".join(
        f"pid {s.pid} {s.cmdline[:120]}" for s in survivors)


def test_kill_before_anything_is_recorded_then_resume_or_deploy_again(topology, tmp_path):
    """A kill during start-up (before the deployment is in the store): --resume says so (exit 2, no
    traceback); deploying again works, each operation once."""
    home, ledger = tmp_path / "home", tmp_path / "ledger.txt"
    command = torture.Orch(home, ["deploy", str(topology), "-n", torture.NAME, "--set", f"ledger={ledger}"],
                           tmp_path / "orch.log")
    command.wait_or_kill_at(0.05)
    torture.reap(command.watcher.survivors())
    snap = torture.store_snapshot(home)
    if snap["deployment"] is None:
        resumed = orch(home, "deploy", "--resume", torture.NAME)
        assert resumed.returncode == 2 and "no deployment named" in resumed.stderr, resumed.stderr
        again = orch(home, "deploy", str(topology), "-n", torture.NAME, "--set", f"ledger={ledger}")
    else:
        again = orch(home, "deploy", "--resume", torture.NAME)
    assert again.returncode == 0, again.stderr
    assert all(count == 1 for count in torture.read_ledger(ledger).values())
    assert torture.store_snapshot(home)["integrity"] == "ok"


# -- orch run ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jobs_topology(tmp_path_factory) -> Path:
    return torture.build_run_topology(tmp_path_factory.mktemp("jobs"), jobs=2, seed=3, pause=(3.0, 3.0))


def _deployed_jobs(jobs_topology: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    home, ledger, jobs_dir = tmp_path / "home", tmp_path / "ledger.txt", tmp_path / "jobs"
    jobs_dir.mkdir()
    deployed = orch(home, "deploy", str(jobs_topology), "-n", torture.NAME, "--set", f"ledger={ledger}",
                    "--set", f"jobs_dir={jobs_dir}")
    assert deployed.returncode == 0, deployed.stderr
    return home, ledger, jobs_dir


def _run_killed_while_watching(home: Path, ledger: Path, jobs_dir: Path, log: Path) -> str:
    """orch run, killed while it watches job j0 (its submit done, its job running)."""
    command = torture.Orch(home, ["run", torture.NAME, "-w", "exec"], log)
    try:
        def watching():
            rows = runs(home)
            submit = any(r["step_id"] == "run_j0#0" and r["status"] == "done" for r in rows)
            monitor = any(r["step_id"] == "run_j0#1" and r["status"] == "started" for r in rows)
            return submit and monitor and torture.read_ledger(ledger).get(("j0", "job"), 0) == 1
        wait_for(watching, 120, "job j0 submitted and watched", command)
    finally:
        command.kill()
    # the job itself runs on (a job outlives orch on purpose); what else orch left is asserted elsewhere
    torture.reap(command.watcher.survivors(ignore=lambda s: s.cwd.startswith(str(jobs_dir))))
    execution = torture._latest_execution(home, "exec")
    assert execution
    return execution


def test_run_resume_after_a_kill_while_watching_a_job_does_not_submit_it_again(jobs_topology, tmp_path):
    home, ledger, jobs_dir = _deployed_jobs(jobs_topology, tmp_path)
    execution = _run_killed_while_watching(home, ledger, jobs_dir, tmp_path / "orch.log")
    resumed = orch(home, "run", torture.NAME, "--resume", execution)
    assert resumed.returncode == 0, resumed.stderr
    time.sleep(0.5)
    counts = torture.read_ledger(ledger)
    assert counts[("j1", "job")] == 1
    assert counts[("j0", "job")] == 1, "job j0 was submitted before the kill and ran again after the resume"


def test_torture_script_runs_from_the_command_line_in_run_mode(tmp_path):
    """The script's CLI, in --run mode (orch run killed, then run --resume EXEC of the same execution): one
    trial, its exit status and its report; the trial's own checks cover the resumed execution ending done,
    no other left running, every job run, the store consistent."""
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "torture.py"), "--run", "--trials", "1",
                           "--seed", "5", "--kill-window", "2", "8", "--max-rekills", "0", "--json", str(out),
                           "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert "orch crash torture (run): 1 trials" in done.stdout, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["trials"] == 1 and report["mode"] == "run" and "reexecuted" in report
    assert done.returncode == (1 if report["failed_trials"] else 0)
    findings = [f for t in report["failures"] for f in t["failures"]]
    assert not findings, findings


def test_kill_signal_is_sigkill_of_the_whole_group(tmp_path):
    """Guard for the harness itself: Orch.kill really kills the group it started (a child sleeping in the
    same group is gone too), so the other tests kill what they claim to."""
    script = "import subprocess,time; subprocess.Popen(['sleep','30']); time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    watcher = torture.ProcessWatcher(proc.pid)
    wait_for(lambda: watcher.seen, 10, "the child sleep")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    watcher.stop()
    time.sleep(0.2)
    assert watcher.survivors() == []
