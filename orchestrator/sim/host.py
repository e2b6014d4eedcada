"""One simulated host's life: boot its PID 1, find and verify it, run commands in it, stop it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sim import net
from orchestrator.sim.errors import SimError
from orchestrator.sim.layout import HostLayout, SiteLayout
from orchestrator.sim.proc import host_env, run

HOSTINIT = Path(__file__).with_name("hostinit.py")
TMPFS_SIZE = "1g"  # most a host can write; tmpfs takes memory only as it is used
BOOT_TIMEOUT = 20.0


@dataclass(frozen=True)
class ProcessRecord:
    """A PID and its start time (clock ticks since boot), which a recycled PID won't share."""

    pid: int
    start_time: int


@dataclass(frozen=True)
class ProcStat:
    state: str
    ppid: int
    start_time: int


def _stat(pid: int) -> ProcStat | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return ProcStat(state=fields[0], ppid=int(fields[1]), start_time=int(fields[19]))


def _start_time(pid: int) -> int | None:
    """Start time of a live (not zombie) process, else None."""
    st = _stat(pid)
    return None if st is None or st.state in ("Z", "X") else st.start_time


def _read_record(path: Path) -> ProcessRecord | None:
    try:
        pid, start = path.read_text().split()
        return ProcessRecord(int(pid), int(start))
    except (OSError, ValueError):
        return None


def _is_pid1_of_child_ns(pid: int) -> bool:
    # "NSpid: <pid here> ... 1": the process is PID 1 of a pid namespace below ours.
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return len(ids) >= 2 and ids[0] == str(pid) and ids[-1] == "1"
    except OSError:
        pass
    return False


def _same_netns(pid: int, netns: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(net.NETNS_DIR / netns).st_ino
    except OSError:
        return False


def init_pid(host: HostLayout, hostdir: Path) -> int | None:
    """The machine PID of the host's PID 1, only if that process is really it.

    Checked: the recorded start time (not a recycled PID), PID 1 of a child pid
    namespace, and (while the netns exists) living in the host's netns.
    """
    record = _read_record(hostdir / "init.pid")
    if record is None or _start_time(record.pid) != record.start_time:
        return None
    if not _is_pid1_of_child_ns(record.pid):
        return None
    if net.netns_exists(host.netns) and not _same_netns(record.pid, host.netns):
        return None
    return record.pid


def _orphan_init_pids(host: HostLayout) -> list[int]:
    """PID 1s in the host's netns when its record is lost (e.g. the site dir was removed)."""
    if not net.netns_exists(host.netns):
        return []
    out = run(["ip", "netns", "pids", host.netns], check=False).stdout.split()
    return [int(p) for p in out if p.isdigit() and _is_pid1_of_child_ns(int(p))
            and _same_netns(int(p), host.netns)]


def healthy(site: SiteLayout, host: HostLayout, hostdir: Path) -> bool:
    return (
        init_pid(host, hostdir) is not None
        and net.netns_exists(host.netns)
        and net.link_exists(host.veth)
        and net.veth_on_bridge(site, host)
    )


def boot(site: SiteLayout, host: HostLayout, hostdir: Path) -> None:
    """Create the host's netns and link and start its PID 1; see wait_booted."""
    net.connect_host(site, host)
    log = hostdir / "init.log"
    argv = [
        "ip", "netns", "exec", host.netns,
        "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child",
        "--propagation", "private",
        sys.executable, "-I", str(HOSTINIT), str(hostdir), host.hostname, TMPFS_SIZE,
    ]
    # posix_spawn, not Popen: nobody waits for this process here, and a dropped Popen
    # would warn. Its stdio is a log file, never our pipes (a caller doing $(orch sim up)
    # would otherwise wait for the host to end). Own session: no terminal signals.
    pid = os.posix_spawnp(
        argv[0], argv, host_env(),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    st = _stat(pid)  # a zombie keeps its start time, so this is right even if it failed at once
    (hostdir / "launcher.pid").write_text(f"{pid} {st.start_time if st else 0}\n")


def _reap_launcher(hostdir: Path, wait: float) -> bool:
    """Reap the unshare process if it is our child; True when it is gone (or not ours)."""
    record = _read_record(hostdir / "launcher.pid")
    if record is None:
        return True
    deadline = time.monotonic() + wait
    while True:
        st = _stat(record.pid)
        # Only a process we spawned, identified by parent and start time, is waited for.
        if st is None or st.ppid != os.getpid() or st.start_time != record.start_time:
            return True
        try:
            done, _ = os.waitpid(record.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def sshd_answers(address: str, timeout: float = 1.0) -> bool:
    """True when something on address:22 greets with an SSH banner."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _launcher_gone(hostdir: Path) -> bool:
    record = _read_record(hostdir / "launcher.pid")
    return record is not None and _start_time(record.pid) != record.start_time


def wait_booted(hosts: Sequence[tuple[HostLayout, Path]]) -> None:
    """Wait until each host's sshd greets; SimError with the host's boot log if not."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    pending = list(hosts)
    while pending:
        for host, hostdir in list(pending):
            pid = init_pid(host, hostdir)
            # Knock only once PID 1 is sshd: before the host's eth0 is up a connect
            # would hang until its timeout.
            if pid is not None and _comm(pid) == "sshd" and sshd_answers(str(host.address)):
                pending.remove((host, hostdir))
            elif _launcher_gone(hostdir):
                _reap_launcher(hostdir, 0)
                raise SimError(f"host {host.hostname} stopped while booting:\n{_log_tail(hostdir)}")
        if pending and time.monotonic() > deadline:
            names = ", ".join(h.hostname for h, _ in pending)
            raise SimError(f"sshd did not come up on {names} in {BOOT_TIMEOUT:g} s:\n"
                           + _log_tail(pending[0][1]))
        if pending:
            time.sleep(0.02)


def _log_tail(hostdir: Path) -> str:
    try:
        return "\n".join((hostdir / "init.log").read_text().splitlines()[-20:])
    except OSError:
        return "(no boot log)"


def stop(host: HostLayout, hostdir: Path) -> None:
    """Kill the host (only by its verified PID 1), remove its link, netns and files."""
    pids = [p for p in [init_pid(host, hostdir)] if p is not None] or _orphan_init_pids(host)
    for pid in pids:
        _kill_init(host, pid)
    deadline = time.monotonic() + 5
    while any(_start_time(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    _reap_launcher(hostdir, wait=2.0)
    net.disconnect_host(host)
    if hostdir.exists():
        shutil.rmtree(hostdir)


def _kill_init(host: HostLayout, pid: int) -> None:
    """SIGKILL the host's PID 1; the kernel then kills every process of the host.

    Through a pidfd, checked again after opening it: the signal cannot reach another
    process that got the PID in between.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        start = _start_time(pid)
        verified = (
            start is not None
            and _is_pid1_of_child_ns(pid)
            and (not net.netns_exists(host.netns) or _same_netns(pid, host.netns))
        )
        if verified:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def exec_in(pid: int, argv: Sequence[str], *, input: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run argv inside the host whose PID 1 is pid: all its namespaces, its root and cwd."""
    nsenter = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--"]
    try:
        return subprocess.run(
            [*nsenter, *argv], input=input, check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, env=host_env(),
        )
    except subprocess.TimeoutExpired as exc:
        raise SimError(f"{' '.join(argv)} did not finish in {timeout:g} s inside the host") from exc
