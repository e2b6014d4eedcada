"""Run one command and measure it: wall time, CPU time of its whole process tree, peak memory.

- wall: monotonic clock from spawn to exit;
- CPU: user+sys from wait4() on the child, which covers the child and every descendant it waited
  for (orch's Ansible processes and their forks), and nothing else on the machine;
- max_proc_rss: ru_maxrss from the same wait4(): the largest single process of the tree;
- tree_peak_rss: the largest SUM of RSS over the tree, sampled every `interval` seconds from /proc
  (shared pages are counted once per process, so this is an upper bound; very short-lived
  processes can be missed between samples);
- self_*: the measured program's own rusage, when it is orch run through orch_self.py.

The child runs in its own session so that a timeout can end its whole group, and only that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


@dataclass
class Sample:
    ok: bool
    rc: int | None
    wall_s: float
    cpu_s: float
    max_proc_rss_mb: float
    tree_peak_rss_mb: float
    self_cpu_s: float | None = None
    self_rss_mb: float | None = None
    timed_out: bool = False
    log_tail: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _children_by_parent() -> dict[int, list[int]]:
    # /proc/PID/task/TID/children is not available on every kernel: scan /proc instead
    by_parent: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        by_parent.setdefault(ppid, []).append(int(entry))
    return by_parent


def tree_rss(root: int) -> int:
    """Sum of resident memory, in bytes, of root and all its descendants alive now."""
    total = 0
    for pid in [root, *descendants(root)]:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


class TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self.done.wait(self.interval)


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    interval: float = 0.1,
    self_report: bool = False,
    stdout_file: str | Path | None = None,
) -> Sample:
    """Run cmd to its end (or to timeout) and measure it. Output goes to a log; its tail is kept on failure.

    self_report: the command is orch_self.py, which writes its own rusage to $ORCH_BENCH_SELF_RUSAGE.
    """
    env = dict(env if env is not None else os.environ)
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as scratch:
        log_path = Path(stdout_file) if stdout_file else Path(scratch) / "out.log"
        self_path = Path(scratch) / "self.json"
        if self_report:
            env["ORCH_BENCH_SELF_RUSAGE"] = str(self_path)
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            sampler = TreeSampler(proc.pid, interval)
            sampler.start()
            timed_out = threading.Event()
            timer = threading.Timer(timeout, _end_group, (proc.pid, timed_out)) if timeout else None
            if timer:
                timer.start()
            try:
                # wait4 and not proc.wait(): it returns the rusage of this child's tree alone
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                wall = time.perf_counter() - started
                if timer:
                    timer.cancel()
                sampler.done.set()
                sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)  # so that Popen does not wait again
        self_usage = _read_json(self_path)
        tail = "" if proc.returncode == 0 else _tail(log_path)
    return Sample(
        ok=proc.returncode == 0 and not timed_out.is_set(),
        rc=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_proc_rss_mb=usage.ru_maxrss * 1024 / MB,  # Linux reports ru_maxrss in KiB
        tree_peak_rss_mb=sampler.peak / MB,
        self_cpu_s=self_usage.get("cpu_s"),
        self_rss_mb=self_usage.get("maxrss_mb"),
        timed_out=timed_out.is_set(),
        log_tail=tail,
    )


def descendants(root: int) -> list[int]:
    by_parent = _children_by_parent()
    found, stack = [], list(by_parent.get(root, ()))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(by_parent.get(pid, ()))
    return found


def _end_group(pid: int, flag: threading.Event) -> None:
    """Timeout: TERM the group we started, then KILL it if it lingers, and KILL what it started in
    sessions of its own (orch's Ansible workers lead their own), found before the TERM."""
    flag.set()
    started_elsewhere = [(child, _start_time(child)) for child in descendants(pid)]
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    for child, start in started_elsewhere:
        if _start_time(child) == start:  # still that process, not a new one that got its pid
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2 :].split()[19])  # field 22, starttime


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""
