"""Names, addresses and file paths of a simulated site, derived from its name (pure).

Everything the site creates on the machine (netns, links, MACs, addresses) is named here,
so `up`, `down` and the tests agree on it without asking the kernel.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from orchestrator.sim.errors import SimError

SITE_NAME = re.compile(r"^[a-z](?:[a-z0-9-]{0,22}[a-z0-9])?$")
# No dashes in host names: the netns "<site>-<host>" then tells site and host apart.
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
HOST_OFFSET = 10  # host with index i gets .(10+i); .1 is the bridge in the machine's netns
MAX_HOSTS = 200
SCHEDULER_HOST = "login"  # the host that runs Slurm


def site_tag(name: str) -> str:
    """Six hex digits identifying a site in kernel names, which are limited to 15 chars."""
    return hashlib.sha256(name.encode()).hexdigest()[:6]


def validate_names(name: str, hosts: Iterable[str]) -> tuple[str, ...]:
    """The host names as a tuple, or SimError saying which name is not acceptable."""
    if not SITE_NAME.match(name):
        raise SimError(
            f"site name {name!r} is not valid: use 1-24 characters a-z, 0-9 and '-', "
            "starting with a letter"
        )
    hosts = tuple(hosts)
    if not hosts:
        raise SimError("a site needs at least one host")
    for host in hosts:
        if not HOST_NAME.match(host):
            raise SimError(
                f"host name {host!r} is not valid: use 1-16 characters a-z and 0-9, "
                "starting with a letter"
            )
    if len(set(hosts)) != len(hosts):
        raise SimError(f"host names repeat: {', '.join(hosts)}")
    if len(hosts) > MAX_HOSTS:
        raise SimError(f"at most {MAX_HOSTS} hosts per site")
    if SCHEDULER_HOST not in hosts:
        raise SimError(f"a site needs a host named {SCHEDULER_HOST!r} (it runs Slurm)")
    return hosts


@dataclass(frozen=True)
class SitePaths:
    """Files of one site under its directory."""

    directory: Path

    @property
    def site_file(self) -> Path:
        return self.directory / "site.yaml"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.directory / ".lock"

    @property
    def keys_dir(self) -> Path:
        return self.directory / "keys"

    @property
    def client_key(self) -> Path:
        return self.keys_dir / "id_ed25519"

    @property
    def munge_key(self) -> Path:
        return self.keys_dir / "munge.key"

    def host_key(self, host: str) -> Path:
        return self.keys_dir / f"ssh_host_{host}_ed25519_key"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    @property
    def control_dir(self) -> Path:
        return self.directory / "cp"

    @property
    def hosts_dir(self) -> Path:
        return self.directory / "hosts"

    def host_dir(self, host: str) -> Path:
        return self.hosts_dir / host


@dataclass(frozen=True)
class HostLayout:
    """One host: what it is called and where it is, in every namespace."""

    name: str  # as the user names it: login, data, builder
    index: int  # stable per site (state.json), gives address and MACs
    address: IPv4Address
    hostname: str  # `hostname -s` inside the host, Slurm's NodeName
    netns: str
    veth: str  # the machine's end of the host's link; the host's end is eth0
    host_mac: str
    machine_mac: str


@dataclass(frozen=True)
class SiteLayout:
    name: str
    subnet: IPv4Network
    hosts: tuple[HostLayout, ...]

    @property
    def tag(self) -> str:
        return site_tag(self.name)

    @property
    def bridge(self) -> str:
        return bridge_name(self.name)

    @property
    def gateway(self) -> IPv4Interface:
        """The machine's address on the site network (the bridge)."""
        return IPv4Interface(f"{self.subnet[1]}/{self.subnet.prefixlen}")

    @property
    def bridge_mac(self) -> str:
        return _mac(self.tag, 2, 0)

    def host(self, name: str) -> HostLayout:
        for host in self.hosts:
            if host.name == name:
                return host
        raise SimError(f"site {self.name!r} has no host {name!r}")


def bridge_name(site: str) -> str:
    return f"osb{site_tag(site)}"


def netns_name(site: str, host: str) -> str:
    return f"{site}-{host}"


def _mac(tag: str, side: int, index: int) -> str:
    # Fixed, locally administered MACs: a re-created host keeps its MAC, so the ARP
    # caches of the machine and of the other hosts stay right (random MACs left a
    # restarted host unreachable for ~20 s).
    return f"02:{tag[0:2]}:{tag[2:4]}:{tag[4:6]}:{side:02x}:{index:02x}"


def host_layout(site: str, subnet: IPv4Network, host: str, index: int) -> HostLayout:
    tag = site_tag(site)
    return HostLayout(
        name=host,
        index=index,
        address=subnet[HOST_OFFSET + index],
        hostname=f"{site}-{host}",
        netns=netns_name(site, host),
        veth=f"osv{tag}{index}",
        host_mac=_mac(tag, 0, index),
        machine_mac=_mac(tag, 1, index),
    )


def site_layout(site: str, subnet: IPv4Network, indices: Mapping[str, int]) -> SiteLayout:
    hosts = tuple(host_layout(site, subnet, h, i) for h, i in indices.items())
    return SiteLayout(name=site, subnet=subnet, hosts=hosts)


def allocate_indices(hosts: Iterable[str], previous: Mapping[str, int]) -> dict[str, int]:
    """Host name -> index: kept from `previous` where known, else the lowest free one."""
    hosts = tuple(hosts)
    kept = {h: previous[h] for h in hosts if h in previous}
    used = set(kept.values())
    result: dict[str, int] = {}
    free = (i for i in range(1, MAX_HOSTS + 1) if i not in used)
    for host in hosts:
        result[host] = kept[host] if host in kept else next(free)
    return result
