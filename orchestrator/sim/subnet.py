"""Choosing a site's /24: stable per name, never one the machine already uses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from ipaddress import IPv4Network, ip_network

from orchestrator.sim.errors import SimError
from orchestrator.sim.proc import run

SUPERNET = IPv4Network("10.213.0.0/16")  # sites use 10.213.N.0/24, N in 1..254


def preferred_subnet(name: str) -> IPv4Network:
    n = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 254 + 1
    return IPv4Network(f"10.213.{n}.0/24")


def _candidates(name: str, recorded: IPv4Network | None) -> Iterable[IPv4Network]:
    if recorded is not None:
        yield recorded
    first = preferred_subnet(name).network_address.packed[2]
    for step in range(254):
        yield IPv4Network(f"10.213.{(first - 1 + step) % 254 + 1}.0/24")


def choose_subnet(
    name: str, recorded: IPv4Network | None, in_use: Iterable[IPv4Network]
) -> IPv4Network:
    """The recorded subnet if still free, else the name's preferred one, else the next free."""
    in_use = tuple(in_use)
    for candidate in _candidates(name, recorded):
        if not any(candidate.overlaps(net) for net in in_use):
            return candidate
    raise SimError(f"no free /24 left in {SUPERNET} for site {name!r}")


def networks_in_use(ignore_device: str | None = None) -> list[IPv4Network]:
    """IPv4 networks of the machine's addresses and routes (other sites' bridges included).

    The default route is left out: it 'overlaps' everything but takes nothing.
    """
    nets: list[IPv4Network] = []
    addrs = json.loads(run(["ip", "-j", "-4", "addr", "show"]).stdout or "[]")
    for link in addrs:
        if link.get("ifname") == ignore_device:
            continue
        for info in link.get("addr_info", []):
            nets.append(ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("dev") == ignore_device:
            continue
        nets.append(ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets
