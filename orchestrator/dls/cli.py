"""`orch dls up|status|down`: the local Airflow from the command line.

Only parses options and prints; the work is in orchestrator.dls.local. A DlsError is printed on stderr with
exit status 2 (no traceback). Plugged into `orch` by the entry point group `orch.commands`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from orchestrator.dls import local
from orchestrator.home import default_home


def _home() -> Path:
    """The root CLI's home (ctx.obj["home"]), else $ORCH_HOME or ~/.local/share/orch."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.obj if ctx is not None else None
    home = obj.get("home") if isinstance(obj, dict) else None
    return Path(home) if home is not None else default_home()


def _progress(message: str) -> None:
    click.echo(f"dls: {message}", err=True)


def _show(state: local.Status) -> None:
    click.echo(f"up    {state.url}" if state.up else "down")
    for process, alive in state.processes:
        click.echo(f"  {process.name:<14} pid {process.pid:<8} {'running' if alive else 'gone'}")
    if state.up:
        parts = state.health or {}
        summary = ", ".join(f"{name} {(parts.get(name) or {}).get('status') or '-'}"
                            for name in ("metadatabase", "scheduler", "dag_processor"))
        click.echo(f"  health: {summary if state.health else 'no answer'}")


@click.group("dls")
def dls() -> None:
    """A local Apache Airflow with orch's DAGs (data logistics), on loopback only."""


@dls.command()
@click.option("--port", type=click.IntRange(1, 65535), default=local.DEFAULT_PORT, show_default=True,
              help="The API server's port on 127.0.0.1.")
@click.option("--airflow", "airflow", default=None,
              help="The airflow program [default: $ORCH_AIRFLOW, beside orch's Python, the checkout's "
                   ".venv-dls, PATH].")
@click.option("--timeout", type=float, default=180, show_default=True, help="Seconds to wait for healthy.")
def up(port: int, airflow: str | None, timeout: float) -> None:
    """Start Airflow (API server, scheduler, DAG processor); nothing happens when it already runs."""
    home = _home()
    try:
        state, started = local.up(home, port, airflow, timeout=timeout, progress=_progress)
    except local.DlsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not started:
        click.echo(f"already up at {state.url}")
        return
    click.echo(f"up at {state.url} (user {local.USERNAME}; its password is in "
               f"{local.Layout.of(home).service_file})")


@dls.command()
def status() -> None:
    """Up or down, the URL, the processes and Airflow's health."""
    _show(local.status(_home()))


@dls.command()
def down() -> None:
    """Stop the processes `up` started (only those)."""
    try:
        stopped = local.down(_home())
    except local.DlsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"stopped {', '.join(p.name for p in stopped)}" if stopped else "was not running")
