"""Helpers for tests that run against a simulated site (used by tests/e2e).

Kept in the package, not in a conftest, so any test directory can import them by a
stable name; nothing here depends on pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.sim import site
from orchestrator.sim.layout import bridge_name, site_tag
from orchestrator.sim.prereq import check_prerequisites


@dataclass(frozen=True)
class SimSite:
    """A running site: its site.yaml values (site["login_host"] ...), name and directory."""

    name: str
    directory: Path
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def ssh_config(self) -> Path:
        return self.directory / "ssh_config"

    def ssh(self, host: str, command: str, timeout: float = 60, *,
            user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run command on host over real SSH (the site's ssh_config); output as text.

        As the site's cluster user (ssh_user), like orch; user="root" for what only the test
        harness does as root (writing outside the user's folders, reading root's files).
        """
        target = f"{user}@{host}" if user else host
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), target, command],
            capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
        )


def unavailable_reason() -> str | None:
    """Why this machine cannot run a site, or None when it can."""
    problems = check_prerequisites()
    return "simulated site unavailable: " + "; ".join(problems) if problems else None


def bring_up(name: str, directory: Path, hosts: Sequence[str] = site.DEFAULT_HOSTS) -> SimSite:
    """`up`, and `down` again if that fails half way: a half-made site must not linger."""
    try:
        site_file = site.up(name, tuple(hosts), directory)
    except BaseException:
        site.down(name, directory)
        raise
    return SimSite(name=name, directory=directory, values=yaml.safe_load(site_file.read_text()))


@dataclass(frozen=True)
class Traces:
    """What a running site put on the machine, noted to check after `down`."""

    name: str
    directory: Path
    pids: tuple[int, ...]  # the hosts' PID 1s and the unshare processes above them
    links: tuple[str, ...]


def traces_of(sim_site: SimSite) -> Traces:
    info = site.status(sim_site.name, sim_site.directory)
    pids = [h["pid"] for h in info["hosts"].values() if h["pid"]]
    for launcher in (sim_site.directory / "hosts").glob("*/launcher.pid"):
        pids.append(int(launcher.read_text().split()[0]))
    tag = site_tag(sim_site.name)
    links = [bridge_name(sim_site.name)] + [n for n in os.listdir("/sys/class/net") if tag in n]
    return Traces(sim_site.name, sim_site.directory, tuple(pids), tuple(links))


def leftovers(traces: Traces) -> list[str]:
    """Everything of the site still on the machine; empty when `down` cleaned up."""
    found: list[str] = []
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    found += [f"netns {ns['name']}" for ns in (json.loads(out) if out.strip() else [])
              if ns["name"].startswith(f"{traces.name}-")]
    tag = site_tag(traces.name)
    links = set(traces.links) | {n for n in os.listdir("/sys/class/net") if tag in n}
    found += [f"link {n}" for n in sorted(links) if Path("/sys/class/net", n).exists()]
    found += [f"mount {m}" for m in Path("/proc/mounts").read_text().splitlines()
              if str(traces.directory) in m or f"/run/netns/{traces.name}-" in m]
    found += [f"process {pid}" for pid in traces.pids if Path(f"/proc/{pid}").exists()]
    return found
