"""Start a simulated host's services unless they are running: `slurm` or `http DIR PORT`.

Runs inside the host, fed on stdin to the host's /usr/bin/python3 by
orchestrator.sim.roles; standard library only. Idempotent: a running service (its pid
file names a live process) is left alone, so `up` can call it every time. Daemons get
/dev/null and a log file as stdio, never the caller's pipes, so the caller's read of
our output ends when we do.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LOG_DIR = Path("/var/log/orch-sim")


def running(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return False
    return state not in ("Z", "X")


def start(name: str, argv: list[str]) -> None:
    """Run a daemon's start command; it forks into the background by itself."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name}.out", "ab") as log:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout:g} s")
        time.sleep(0.05)


def quiet(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, check=False)


def munge_works() -> bool:
    cred = quiet(["munge", "-n"])
    return cred.returncode == 0 and quiet(["unmunge"], cred.stdout).returncode == 0


def node_state() -> str:
    return quiet(["sinfo", "-h", "-o", "%T"]).stdout.decode().strip()


def chown_munge(*paths: str) -> None:
    user = pwd.getpwnam("munge")
    for p in paths:
        os.chown(p, user.pw_uid, user.pw_gid)


def start_slurm() -> None:
    Path("/run/munge").mkdir(mode=0o755, exist_ok=True)
    chown_munge("/run/munge")
    if not running(Path("/run/munge/munged.pid")):
        # munged must run as user munge, or it refuses to start.
        start("munged", ["setpriv", "--reuid=munge", "--regid=munge", "--init-groups",
                         "/usr/sbin/munged"])
    wait_for("munge", munge_works)
    for d in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm", "/run/slurm"):
        Path(d).mkdir(parents=True, exist_ok=True)
    # Both daemonize; their pid files hold PIDs of this host's pid namespace.
    if not running(Path("/run/slurm/slurmctld.pid")):
        start("slurmctld", ["slurmctld"])
    if not running(Path("/run/slurm/slurmd.pid")):
        start("slurmd", ["slurmd"])
    try:
        wait_for("slurm node", lambda: node_state() in ("idle", "mixed", "allocated", "completing"))
    except SystemExit:
        for log in ("slurmctld.log", "slurmd.log"):
            path = Path("/var/log/slurm", log)
            if path.exists():
                print(f"--- {path}", *path.read_text().splitlines()[-15:], sep="\n", file=sys.stderr)
        raise


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_http(directory: str, port: int) -> None:
    pidfile = Path("/run/orch-sim/http.pid")
    if not running(pidfile):
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG_DIR / "http.out", "ab") as log:
            # Own session, so it outlives this script; it re-parents to the host's PID 1
            # and dies with the host.
            server = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", "0.0.0.0",
                 "--directory", directory],
                cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pidfile.write_text(f"{server.pid}\n")
    wait_for(f"http on port {port}", lambda: port_open(port))


def main(argv: list[str]) -> int:
    if argv[1:2] == ["slurm"]:
        start_slurm()
    elif argv[1:2] == ["http"] and len(argv) == 4:
        start_http(argv[2], int(argv[3]))
    else:
        print("usage: hostservices.py slurm | http DIR PORT", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
