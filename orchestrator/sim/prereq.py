"""What the machine must have for a simulated site, checked before anything is created."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from orchestrator.sim.errors import SimError
from orchestrator.sim.proc import TOOL_PATH

# tool -> Debian package that ships it (for the message)
BASE_TOOLS: dict[str, str] = {
    "ip": "iproute2",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "pivot_root": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "cp": "coreutils",
    "sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
SLURM_TOOLS: dict[str, str] = {
    "munged": "munge",
    "munge": "munge",
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sinfo": "slurm-client",
    "setpriv": "util-linux",
}
HOST_PYTHON = Path("/usr/bin/python3")  # the hosts' interpreter (read through their overlay)


def check_prerequisites(
    *,
    euid: int | None = None,
    slurm: bool = True,
    which: Callable[[str], str | None] | None = None,
    filesystems: str | None = None,
    host_python: Path = HOST_PYTHON,
) -> list[str]:
    """Problems that stop a site from coming up; empty when it can.

    Every argument can be injected, so tests can check the non-root and missing-tool
    messages without dropping privileges or removing packages.
    """
    euid = os.geteuid() if euid is None else euid
    which = which or (lambda tool: shutil.which(tool, path=f"{TOOL_PATH}:{os.environ.get('PATH', '')}"))
    problems: list[str] = []
    if euid != 0:
        problems.append(
            f"root is needed (running as uid {euid}): the site creates network namespaces, "
            "mounts and sshd processes"
        )
    tools = dict(BASE_TOOLS, **(SLURM_TOOLS if slurm else {}))
    missing = sorted(f"{tool} (package {pkg})" for tool, pkg in tools.items() if not which(tool))
    if missing:
        problems.append("missing tools: " + ", ".join(missing))
    if not host_python.exists():
        problems.append(f"{host_python} is missing (package python3): the hosts run it")
    if filesystems is None:
        try:
            filesystems = Path("/proc/filesystems").read_text()
        except OSError:
            filesystems = ""
    if "overlay" not in filesystems.split():
        problems.append("the kernel has no overlay filesystem (modprobe overlay)")
    return problems


def require_prerequisites(*, euid: int | None = None, slurm: bool = True) -> None:
    """SimError listing every problem, if there is any."""
    problems = check_prerequisites(euid=euid, slurm=slurm)
    if problems:
        raise SimError("cannot run the simulated site: " + "; ".join(problems))


def require_root(*, euid: int | None = None) -> None:
    """SimError unless root: without it `ip` and `kill` fail and `down` would leave things."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0:
        raise SimError(f"root is needed (running as uid {euid}) to inspect or stop the simulated site")
