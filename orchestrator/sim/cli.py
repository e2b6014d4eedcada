"""`orch sim up|status|down`: the simulated HPC site from the command line.

Only parses options and prints; the work is in orchestrator.sim.site. A SimError is
printed on stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.sim import site
from orchestrator.sim.errors import SimError
from orchestrator.sim.paths import site_directory

T = TypeVar("T")


def _directory(name: str, directory: Path | None) -> Path:
    """--dir, else <home>/sim/<name> with home from the root CLI's context object
    (ctx.obj["home"]), else $ORCH_HOME or ~/.local/share/orch."""
    if directory is not None:
        return site_directory(name, directory)
    ctx = click.get_current_context(silent=True)
    obj = ctx.obj if ctx is not None else None
    home = obj.get("home") if isinstance(obj, dict) else None
    return site_directory(name, None, Path(home) if home is not None else None)


def _progress(message: str) -> None:
    click.echo(f"sim: {message}", err=True)


def _guard(action: Callable[[], T]) -> T:
    try:
        return action()
    except SimError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


name_option = click.option("--name", default=site.DEFAULT_NAME, show_default=True,
                           help="Site name; also prefixes its hostnames and netns.")
dir_option = click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
                          help="Site directory [default: $ORCH_HOME/sim/NAME].")


@click.group("sim")
def sim() -> None:
    """A simulated HPC site on this machine: SSH hosts in network namespaces, Slurm on login."""


@sim.command()
@name_option
@click.option("--hosts", default=",".join(site.DEFAULT_HOSTS), show_default=True,
              help="Comma-separated host names; 'login' runs Slurm, 'data' serves /data over HTTP.")
@dir_option
def up(name: str, hosts: str, directory: Path | None) -> None:
    """Bring the site up (idempotent) and print the path of its site file."""
    host_names = tuple(h.strip() for h in hosts.split(",") if h.strip())
    path = _guard(lambda: site.up(name, host_names, _directory(name, directory), progress=_progress))
    click.echo(str(path))


@sim.command()
@name_option
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(name: str, directory: Path | None, as_json: bool) -> None:
    """Show the site's hosts (address, PID, alive, sshd) and Slurm's state."""
    info = _guard(lambda: site.status(name, _directory(name, directory)))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(_status_text(info))


def _status_text(info: dict[str, Any]) -> str:
    head = "up" if info["up"] else "not up"
    lines = [f"site {info['name']}: {head}  subnet {info['subnet'] or '-'}  dir {info['directory']}"]
    for name, h in info["hosts"].items():
        lines.append(
            f"  {name:<10} {h['address']:<15} pid={h['pid'] or '-':<8} "
            f"alive={'yes' if h['alive'] else 'no':<4} sshd={'yes' if h['sshd'] else 'no'}"
        )
    if info["slurm"]:
        lines.append(f"  slurm on {info['slurm']['host']}: {info['slurm']['state']}")
    if info["site_file"]:
        lines.append(f"  site file: {info['site_file']}")
    return "\n".join(lines)


@sim.command()
@name_option
@dir_option
def down(name: str, directory: Path | None) -> None:
    """Stop the site's hosts and remove its namespaces and links (idempotent)."""
    _guard(lambda: site.down(name, _directory(name, directory), progress=_progress))
