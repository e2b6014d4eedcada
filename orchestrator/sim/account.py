"""The site's cluster user: one unprivileged account, the same on every host, as shared accounts
are on a real cluster (same name, uid and gid on login, data and builder).

orch logs in as this user (the site file's ssh_user), Slurm runs its jobs with its uid, and the
site's writable areas (work, image and data folders) belong to it like a project space. Its
passwd, group and shadow lines are written into each host's own upper layer (seed entries that
shadow the machine's files there); the machine's real /etc is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.sim.errors import SimError


@dataclass(frozen=True)
class ClusterUser:
    name: str
    uid: int
    gid: int
    gecos: str = "orch sim cluster user"
    shell: str = "/bin/bash"

    @property
    def home(self) -> str:
        return f"/home/{self.name}"

    @property
    def authorized_keys(self) -> str:
        """Where sshd looks for the user's keys: the normal AuthorizedKeysFile, .ssh/authorized_keys."""
        return f"{self.home}/.ssh/authorized_keys"


CLUSTER_USER = ClusterUser("hpcuser", 3213, 3213)


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def check_free(user: ClusterUser, passwd: str, group: str) -> None:
    """SimError when the machine's passwd or group gives the user's name or ids to someone else.

    The hosts see the machine's accounts plus ours; one uid with two names would make file
    owners ambiguous. The machine having the very same account is fine.
    """
    for fields in _entries(passwd):
        if len(fields) < 4:
            continue
        same = (fields[0], fields[2], fields[3]) == (user.name, str(user.uid), str(user.gid))
        if not same and (fields[0] == user.name or fields[2] == str(user.uid)):
            raise SimError(f"the machine's /etc/passwd already has {fields[0]!r} (uid {fields[2]}); the site's "
                           f"cluster user is {user.name!r} with uid {user.uid}")
    for fields in _entries(group):
        if len(fields) < 3:
            continue
        if (fields[0] == user.name) != (fields[2] == str(user.gid)):
            raise SimError(f"the machine's /etc/group already has {fields[0]!r} (gid {fields[2]}); the site's "
                           f"cluster group is {user.name!r} with gid {user.gid}")


def _with_line(text: str, name: str, line: str) -> str:
    """text with `line` as the entry of `name` (added, or replacing an earlier one)."""
    kept = [old for old in text.splitlines() if old.split(":", 1)[0] != name]
    return "\n".join([*kept, line]) + "\n"


def passwd_text(user: ClusterUser, machine: str) -> str:
    line = f"{user.name}:x:{user.uid}:{user.gid}:{user.gecos}:{user.home}:{user.shell}"
    return _with_line(machine, user.name, line)


def group_text(user: ClusterUser, machine: str) -> str:
    return _with_line(machine, user.name, f"{user.name}:x:{user.gid}:")


def without_hashes(text: str) -> str:
    """A shadow or gshadow file with every password hash replaced by "*".

    The host's copy is written to the site directory: the machine's hashes must not travel
    there. Key logins never need one; "!" and "*" fields (locked, no password) are kept.
    """
    lines = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[1] and fields[1][0] not in "*!":
            fields[1] = "*"
        lines.append(":".join(fields))
    return "\n".join(lines) + "\n" if lines else ""


def shadow_text(user: ClusterUser, machine: str) -> str:
    # "*": no password can match, but the account is not locked ("!" would make sshd refuse
    # even a key, with UsePAM no).
    return _with_line(without_hashes(machine), user.name, f"{user.name}:*:19000:0:99999:7:::")


def gshadow_text(user: ClusterUser, machine: str) -> str:
    return _with_line(without_hashes(machine), user.name, f"{user.name}:!::")


def machine_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""
