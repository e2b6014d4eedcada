"""`orch serve`, `orch users`, `orch expose`: plugged into `orch` by the entry point group orch.commands."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.api import Orchestrator, default_home


def _home(ctx: click.Context) -> Path:
    return ((ctx.find_root().obj or {}).get("home") or default_home()).expanduser().resolve()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--data-root", "data_roots", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A folder of this server under which users' inputs may name paths (repeatable).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, data_roots: tuple[Path, ...]) -> None:
    """The REST API and web page: OpenAPI at /openapi.json, docs at /docs."""
    import uvicorn

    from orchestrator.serve.app import create_app

    app = create_app(_home(ctx), tuple(p.resolve() for p in data_roots))
    click.echo(f"orch serve on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@click.group()
def users() -> None:
    """Users of the service and their API tokens."""


@users.command(name="create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May manage users and exposed workflows.")
@click.pass_context
def create_user(ctx: click.Context, name: str, admin: bool) -> None:
    """Create a user; print their API token once (only its hash is kept)."""
    token = Orchestrator(_home(ctx)).create_user(name, admin=admin)
    click.echo(token)
    click.echo(f"created user '{name}'{' (admin)' if admin else ''}; the token above is shown once", err=True)


@users.command(name="list")
@click.pass_context
def list_users(ctx: click.Context) -> None:
    for user in Orchestrator(_home(ctx)).users():
        click.echo(f"{user.name}{'  admin' if user.admin else ''}")


@click.command()
@click.argument("deployment")
@click.argument("workflow")
@click.option("--as", "as_name", help="The public name (default DEPLOYMENT@WORKFLOW), e.g. minimal@localhost@exec_job.")
@click.pass_context
def expose(ctx: click.Context, deployment: str, workflow: str, as_name: str | None) -> None:
    """Offer a deployed workflow to the service's users."""
    exposed = Orchestrator(_home(ctx)).expose(deployment, workflow, as_name)
    click.echo(f"{exposed.name}: workflow {exposed.workflow} of {exposed.deployment}")
