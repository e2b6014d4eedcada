"""A host's own files, written to hosts/<host>/seed/ before it boots; its PID 1 copies
them into the host's overlay, where they shadow the machine's files of the same path."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sim import account
from orchestrator.sim.account import CLUSTER_USER, ClusterUser
from orchestrator.sim.layout import HostLayout, SiteLayout


@dataclass(frozen=True)
class SeedEntry:
    path: str  # absolute, as seen inside the host
    mode: int
    content: bytes | None = None  # None: a directory
    owner: str = "root"  # user and group of that name (the cluster user's too, see account)
    group: str | None = None  # another group than the owner's own


def hosts_file(site: SiteLayout) -> str:
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
             f"{site.gateway.ip} {site.name}-machine"]
    lines += [f"{h.address} {h.hostname} {h.name}" for h in site.hosts]
    return "\n".join(lines) + "\n"


def sshd_config(host: HostLayout) -> str:
    return f"""\
# sshd of the simulated host {host.hostname} (orch sim); replaces the machine's file here only.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
# The normal place, as on a real cluster: what `orch credentials create` tells users.
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
# Without the post-quantum hybrid (the client's first choice) a new connection costs
# ~0.15 s less CPU on a small machine; this is a test site, not a security boundary.
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
X11Forwarding no
PrintMotd no
# Parallel Ansible forks open many sessions at once.
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


def base_entries(site: SiteLayout, host: HostLayout, host_key: Path, client_pub: str) -> list[SeedEntry]:
    return [
        SeedEntry("/etc/hostname", 0o644, f"{host.hostname}\n".encode()),
        SeedEntry("/etc/hosts", 0o644, hosts_file(site).encode()),
        # No nameserver: the resolver tries the host's own loopback and fails at once,
        # so no DNS query can leave the site.
        SeedEntry("/etc/resolv.conf", 0o644, b"# orch sim: no DNS; names are in /etc/hosts\n"),
        SeedEntry("/etc/ssh/sshd_config", 0o644, sshd_config(host).encode()),
        SeedEntry("/etc/ssh/ssh_host_ed25519_key", 0o600, host_key.read_bytes()),
        SeedEntry("/etc/ssh/ssh_host_ed25519_key.pub", 0o644, Path(f"{host_key}.pub").read_bytes()),
        # Root may log in too, for the test harness (seeding data, killing daemons); orch
        # itself logs in as the cluster user (the site file's ssh_user).
        SeedEntry("/root/.ssh", 0o700),
        SeedEntry("/root/.ssh/authorized_keys", 0o600, f"{client_pub}\n".encode()),
        *user_entries(CLUSTER_USER, client_pub),
    ]


def user_entries(user: ClusterUser, client_pub: str) -> list[SeedEntry]:
    """The cluster user's account lines, home and authorized_keys (the site key), on every host."""
    account.check_free(user, account.machine_file("/etc/passwd"), account.machine_file("/etc/group"))
    return [
        SeedEntry("/etc/passwd", 0o644, account.passwd_text(user, account.machine_file("/etc/passwd")).encode()),
        SeedEntry("/etc/group", 0o644, account.group_text(user, account.machine_file("/etc/group")).encode()),
        SeedEntry("/etc/shadow", 0o640, account.shadow_text(user, account.machine_file("/etc/shadow")).encode(),
                  group="shadow"),
        SeedEntry("/etc/gshadow", 0o640, account.gshadow_text(user, account.machine_file("/etc/gshadow")).encode(),
                  group="shadow"),
        SeedEntry(user.home, 0o700, owner=user.name),
        SeedEntry(f"{user.home}/.ssh", 0o700, owner=user.name),
        SeedEntry(user.authorized_keys, 0o600, f"{client_pub}\n".encode(), owner=user.name),
    ]


def _ids(owner: str, group: str | None) -> tuple[int, int]:
    # The cluster user exists only inside the hosts: its ids come from account, not the machine.
    if owner == CLUSTER_USER.name:
        uid, gid = CLUSTER_USER.uid, CLUSTER_USER.gid
    else:
        entry = pwd.getpwnam(owner)
        uid, gid = entry.pw_uid, entry.pw_gid
    if group is not None:
        gid = CLUSTER_USER.gid if group == CLUSTER_USER.name else grp.getgrnam(group).gr_gid
    return uid, gid


def _make_parents(seed: Path, inside: Path) -> None:
    # A directory in the upper layer lends its mode and owner to the merged one, so an
    # implicit parent copies the machine's (/etc stays 0755 root, /var/log/slurm slurm's).
    for part in reversed(inside.parents):
        target = seed / part.relative_to("/")
        if target.exists():
            continue
        target.mkdir()
        machine = Path(part)
        if machine.is_dir():
            st = machine.stat()
            os.chown(target, st.st_uid, st.st_gid)
            target.chmod(st.st_mode & 0o7777)
        else:
            target.chmod(0o755)


def write_seed(seed: Path, entries: Iterable[SeedEntry]) -> None:
    if seed.exists():
        shutil.rmtree(seed)
    seed.mkdir(parents=True)
    seed.chmod(0o755)  # becomes the mode of the host's /
    for entry in entries:
        inside = Path(entry.path)
        target = seed / inside.relative_to("/")
        _make_parents(seed, inside)
        if entry.content is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_bytes(entry.content)
        os.chown(target, *_ids(entry.owner, entry.group))
        target.chmod(entry.mode)
