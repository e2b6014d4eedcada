"""A real, throwaway sshd for tests: on a loopback address and a free high port, with its own host key,
an exact known_hosts line and an authorized_keys file the test fills. Needs root and /usr/sbin/sshd.
Stopped by its own pid when the `with` ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SSHD = "/usr/sbin/sshd"


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run sshd"
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh") is None:
        return "needs /usr/sbin/sshd and ssh"
    return None


@dataclass(frozen=True)
class Sshd:
    address: str
    port: int
    known_hosts: Path
    authorized_keys: Path


@contextlib.contextmanager
def running_sshd(folder: Path, address: str = "127.0.0.1") -> Iterator[Sshd]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    host = Ed25519PrivateKey.generate()
    host_key = folder / "host_ed25519"
    host_key.write_bytes(host.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                            serialization.NoEncryption()))
    host_key.chmod(0o600)  # sshd refuses a host key others can read
    host_public = host.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()
    authorized_keys = folder / "authorized_keys"
    authorized_keys.write_text("")
    # sshd's privilege-separation folder; the openssh-server package makes it when its service starts.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = None
    for _ in range(3):  # the free port may be taken between our probe and sshd's bind: try another
        port = _free_port(address)
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(_config(folder, address, port, host_key,
                                                                    authorized_keys))],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        if _listening(address, port, proc):
            break
        _stop(proc)
    else:
        raise RuntimeError(f"sshd did not start: {proc.stderr.read() if proc and proc.stderr else ''}")
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[{address}]:{port} {host_public}\n")
    try:
        yield Sshd(address, port, known_hosts, authorized_keys)
    finally:
        _stop(proc)


def ssh(server: Sshd, key: Path, command: str = "true") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
         "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "PasswordAuthentication=no",
         "-o", "ConnectTimeout=10", "-p", str(server.port), f"root@{server.address}", command],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _config(folder: Path, address: str, port: int, host_key: Path, authorized_keys: Path) -> Path:
    cfg = folder / "sshd_config"
    cfg.write_text(f"""\
Port {port}
ListenAddress {address}
HostKey {host_key}
PidFile none
UsePAM no
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# The temp folders are under /tmp (world-writable): strict modes would refuse them.
StrictModes no
UseDNS no
MaxStartups 50:30:100
LogLevel VERBOSE
""")
    return cfg


def _listening(address: str, port: int, proc: subprocess.Popen, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen) -> None:
    """End that sshd by its own pid (the process we started; -D keeps it in the foreground)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stderr:
        proc.stderr.close()
