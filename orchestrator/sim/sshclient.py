"""The SSH client side of a site: known_hosts, ssh_config, the login check, and closing
ControlPersist masters before hosts go away."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from orchestrator.sim.account import CLUSTER_USER
from orchestrator.sim.errors import SimError
from orchestrator.sim.layout import SiteLayout, SitePaths
from orchestrator.sim.proc import run, tool_env

# A Unix socket path has at most 107 bytes; %C is 40 hex digits, and ssh first binds
# a temporary "<path>.<16 random chars>" before renaming it.
MAX_CONTROL_DIR = 107 - 1 - 40 - 17


def render_known_hosts(site: SiteLayout, host_keys: Mapping[str, str]) -> str:
    """Exactly the site's hosts, by address: nothing is trusted on first use."""
    return "".join(f"{h.address} {host_keys[h.name]}\n" for h in site.hosts)


def render_ssh_config(site: SiteLayout, paths: SitePaths) -> str:
    lines = [f"# ssh -F {paths.ssh_config} HOST   (written by orch sim up for site {site.name})"]
    for h in site.hosts:
        lines += [f"Host {h.name} {h.hostname}", f"  HostName {h.address}", ""]
    lines += [
        "Host *",
        # The cluster user, as orch logs in; `ssh -F FILE root@HOST` for root.
        f"  User {CLUSTER_USER.name}",
        "  Port 22",
        f"  IdentityFile {paths.client_key}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {paths.known_hosts}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  CheckHostIP no",
        "  UpdateHostKeys no",
        "  BatchMode yes",
        "  ConnectTimeout 10",
        "  LogLevel ERROR",
    ]
    if len(str(paths.control_dir)) <= MAX_CONTROL_DIR:
        # One TCP+key exchange per host and minute instead of one per command; `down`
        # closes these masters before the hosts go.
        lines += [
            "  ControlMaster auto",
            f"  ControlPath {paths.control_dir}/%C",
            "  ControlPersist 60s",
        ]
    return "\n".join(lines) + "\n"


def check_logins(site: SiteLayout, paths: SitePaths) -> None:
    """One real ssh round trip per host (in parallel): proves key, known_hosts, sshd."""
    paths.control_dir.mkdir(mode=0o700, exist_ok=True)
    procs = {
        h.hostname: subprocess.Popen(
            ["ssh", "-F", str(paths.ssh_config), h.name, "hostname"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=tool_env(),
        )
        for h in site.hosts
    }
    failures = []
    for hostname, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode != 0 or out.strip() != hostname:
            failures.append(f"{hostname}: rc={proc.returncode} out={out.strip()!r} {err.strip()}")
    if failures:
        raise SimError("ssh check failed: " + "; ".join(failures))


def close_masters(directory: Path) -> None:
    """Ask every ControlPersist master whose socket is under directory to exit."""
    if not directory.exists():
        return
    for path in directory.rglob("*"):
        try:
            if not stat.S_ISSOCK(path.lstat().st_mode):
                continue
        except OSError:
            continue
        # -F /dev/null: nothing from a user's config; -O exit only talks to the socket.
        run(["ssh", "-F", "/dev/null", "-o", f"ControlPath={path}", "-O", "exit", "sim-host"],
            check=False, timeout=10)


def close_master(paths: SitePaths, alias: str) -> None:
    """Close the master of one host (before it is restarted), if there is one."""
    if paths.ssh_config.exists() and paths.control_dir.exists():
        run(["ssh", "-F", str(paths.ssh_config), "-O", "exit", alias], check=False, timeout=10)
