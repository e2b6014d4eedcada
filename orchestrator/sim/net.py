"""The site network in the machine's netns: bridge, per-host netns and veth pairs."""

from __future__ import annotations

import json
from ipaddress import IPv4Interface
from pathlib import Path

from orchestrator.sim.layout import HostLayout, SiteLayout
from orchestrator.sim.proc import run

NETNS_DIR = Path("/run/netns")


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_names() -> list[str]:
    out = run(["ip", "-j", "netns", "list"]).stdout.strip()
    return [entry["name"] for entry in json.loads(out)] if out else []


def _no_ipv6(device: str) -> None:
    # Keep the site IPv4-only: no router solicitations or link-local chatter on our links.
    knob = Path("/proc/sys/net/ipv6/conf", device, "disable_ipv6")
    if knob.exists():
        knob.write_text("1\n")


def bridge_address(bridge: str) -> IPv4Interface | None:
    """The bridge's IPv4 address, or None when there is no bridge (or no address)."""
    if not link_exists(bridge):
        return None
    out = json.loads(run(["ip", "-j", "-4", "addr", "show", "dev", bridge]).stdout or "[]")
    for link in out:
        for info in link.get("addr_info", []):
            return IPv4Interface(f"{info['local']}/{info['prefixlen']}")
    return None


def create_bridge(site: SiteLayout) -> None:
    run(["ip", "link", "add", site.bridge, "address", site.bridge_mac, "type", "bridge"])
    _no_ipv6(site.bridge)
    run(["ip", "addr", "add", str(site.gateway), "dev", site.bridge])
    run(["ip", "link", "set", site.bridge, "up"])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)


def veth_on_bridge(site: SiteLayout, host: HostLayout) -> bool:
    return Path("/sys/class/net", host.veth, "master").resolve().name == site.bridge


def connect_host(site: SiteLayout, host: HostLayout) -> None:
    """A fresh netns for the host, linked to the bridge; eth0 is brought up by the host."""
    run(["ip", "netns", "add", host.netns])
    run(
        ["ip", "link", "add", host.veth, "address", host.machine_mac, "type", "veth",
         "peer", "name", "eth0", "address", host.host_mac, "netns", host.netns]
    )
    _no_ipv6(host.veth)
    run(["ip", "link", "set", host.veth, "master", site.bridge, "up"])
    prefix = site.subnet.prefixlen
    run(["ip", "-n", host.netns, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0"])
    # An earlier life of this host may have left a stale neighbour entry.
    run(["ip", "neigh", "flush", "to", str(host.address), "dev", site.bridge], check=False)


def disconnect_host(host: HostLayout) -> None:
    # Deleting our end removes the pair at once (netns teardown is asynchronous).
    delete_link(host.veth)
    if netns_exists(host.netns):
        run(["ip", "netns", "del", host.netns], check=False)
