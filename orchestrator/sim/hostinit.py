"""PID 1 of a simulated host: build its root filesystem, then become its sshd.

Started by orchestrator.sim.host as

    ip netns exec NETNS unshare --mount --uts --ipc --pid --fork --kill-child \\
        --propagation private PYTHON -I hostinit.py HOSTDIR HOSTNAME TMPFS_SIZE

Deliberately standalone (standard library only, run by path): it runs while the host is
being assembled and must not import the orchestrator package or anything of the venv.
The result, inside the host's own mount namespace:

    /      overlay: lower = the machine's /, upper = a tmpfs of this host only, so every
           write stays on the host and is gone when the host stops
    /proc  this host's pid namespace;  /sys of this host's netns;  /dev from the machine
    /run /tmp /dev/shm   fresh tmpfs

The machine's other mounts are detached (pivot_root), so the host holds no reference to
the other hosts' netns bind mounts and sees none of the machine's mount table. PID 1
ends as sshd: it reaps orphans (daemons started in the host re-parent to it), and
killing it makes the kernel kill every process of the host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

SSHD = "/usr/sbin/sshd"
OPAQUE = ("root",)  # directories of the machine that a host does not see at all


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def record_pid(hostdir: Path) -> None:
    # /proc is still the machine's procfs here, so "self" is our PID in the machine's
    # pid namespace. The start time lets `down` tell this process from a recycled PID.
    pid = int(os.readlink("/proc/self"))
    stat = Path(f"/proc/{pid}/stat").read_text()
    start_time = stat.rsplit(")", 1)[1].split()[19]
    tmp = hostdir / ".init.pid.tmp"
    tmp.write_text(f"{pid} {start_time}\n")
    tmp.replace(hostdir / "init.pid")


def build_root(hostdir: Path, hostname: str, size: str) -> Path:
    rw = hostdir / "rw"
    rw.mkdir(exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=755", f"{hostname}-rw", str(rw))
    upper, work, root = rw / "upper", rw / "work", rw / "root"
    for d in (upper, work, root):
        d.mkdir()
    # seed/ holds this host's own files (sshd_config, host key, /etc/hosts, role files);
    # copied with owners and modes, they shadow the machine's files of the same name.
    sh("cp", "-a", f"{hostdir / 'seed'}/.", f"{upper}/")
    for name in OPAQUE:
        # An opaque upper directory hides the machine's one: the host gets its own
        # empty /root, not the machine's dotfiles (a pyenv .bashrc there would put
        # shims first on PATH and slow every ssh command down).
        (upper / name).mkdir(mode=0o700, exist_ok=True)
        os.setxattr(upper / name, "trusted.overlay.opaque", b"y")
    sh("mount", "-t", "overlay", f"{hostname}-root", "-o",
       f"lowerdir=/,upperdir={upper},workdir={work}", str(root))
    sh("mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", f"{root}/proc")
    sh("mount", "--rbind", "/sys", f"{root}/sys")  # sysfs of this netns (ip netns exec)
    sh("mount", "--rbind", "/dev", f"{root}/dev")
    sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "shm", f"{root}/dev/shm")
    sh("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,nodev", "run", f"{root}/run")
    sh("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmp", f"{root}/tmp")
    (root / "run" / "sshd").mkdir(mode=0o755)  # sshd's privilege separation directory
    return root


def bring_up_network() -> None:
    # /proc/sys/net belongs to the netns of the writer: these are the host's own knobs.
    for dev in ("all", "default", "eth0"):
        knob = Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6")
        if knob.exists():
            knob.write_text("1\n")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "set", "eth0", "up")


def enter_root(root: Path) -> None:
    # pivot_root(".", ".") stacks the old root on top of the new one; the lazy unmount
    # of "." then detaches the old root with every machine mount under it.
    os.chdir(root)
    sh("pivot_root", ".", ".")
    sh("umount", "-l", ".")
    os.chdir("/")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: hostinit.py HOSTDIR HOSTNAME TMPFS_SIZE", file=sys.stderr)
        return 2
    hostdir, hostname, size = Path(argv[1]), argv[2], argv[3]
    if os.getpid() != 1:
        print("hostinit.py must run as PID 1 of a new pid namespace", file=sys.stderr)
        return 2
    record_pid(hostdir)
    socket.sethostname(hostname)
    root = build_root(hostdir, hostname, size)
    bring_up_network()
    enter_root(root)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(SSHD, [SSHD, "-D", "-e", "-f", "/etc/ssh/sshd_config"])
    return 1  # not reached


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (subprocess.CalledProcessError, OSError) as exc:
        # One line in the boot log, which `up` shows in its error.
        print(f"hostinit: {exc}", file=sys.stderr)
        sys.exit(1)
