"""`orch credentials`: create, list, show, verify and delete SSH credentials, through the API.

Registered on the main group by orchestrator/cli/__init__.py. Errors become one line on stderr and exit
code 2, both under `orch` and when this group is run on its own (tests, CliRunner).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.api import CredentialError, Orchestrator, default_home

BAD_INPUT = 2

out = Console(highlight=False, soft_wrap=True)


class CredentialCliError(click.ClickException):
    exit_code = BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _friendly(f: Callable[..., Any]) -> Callable[..., Any]:
    """CredentialError and OS errors as one line: never a traceback (the message carries no secret)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except CredentialError as exc:
            raise CredentialCliError(str(exc)) from None
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            raise CredentialCliError(f"cannot access{where}: {exc.strerror or type(exc).__name__}") from None

    return wrapper


def _api(ctx: click.Context) -> Orchestrator:
    home = (ctx.obj or {}).get("home") or default_home().expanduser().resolve()
    return Orchestrator(Path(home))


# Where sshd looks for a user's keys unless its AuthorizedKeysFile says otherwise; the
# simulated site (orch sim) uses this default too.
AUTHORIZED_KEYS = "~/.ssh/authorized_keys"


def _account(user: str | None) -> str:
    return f"user '{user}'" if user else "the user orch logs in as"


def _where_it_goes(user: str | None) -> str:
    return (f"add the public key above, as one line, to {AUTHORIZED_KEYS} of {_account(user)} on the cluster: "
            "the file sshd reads by default (on a site from `orch sim up` too, for its ssh_user)")


@click.group()
def credentials() -> None:
    """SSH credentials: key pairs orch makes and keeps encrypted, used to reach the cluster."""


@credentials.command()
@click.argument("name")
@click.option("--comment", help="Comment at the end of the public key (default orch:NAME).")
@click.option("--user", help="The account on the cluster this key is for (readable with get_secret).")
@click.pass_context
@_friendly
def create(ctx: click.Context, name: str, comment: str | None, user: str | None) -> None:
    """Make an ed25519 key pair; print the public key for the cluster's authorized_keys."""
    created = _api(ctx).create_credential(name, comment=comment, user=user)
    credential = created.credential
    # stdout is only the key line, so `orch credentials create x | ssh HOST 'cat >> ~/.ssh/authorized_keys'` works.
    click.echo(credential.public_key)
    click.echo(f"created '{name}' ({credential.fingerprint}) in {created.where}; "
               f"{_where_it_goes(credential.user)}", err=True)


@credentials.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_friendly
def list_credentials(ctx: click.Context, as_json: bool) -> None:
    """Names, types, fingerprints and creation times (never a private key)."""
    found = _api(ctx).credentials()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], indent=2))
        return
    if not found:
        out.print("no credentials")
        return
    table = Table()
    for column in ("name", "type", "fingerprint", "created", "user", "comment"):
        table.add_column(column, overflow="fold")  # folded, not cut with "…": a fingerprint is compared whole
    for c in found:
        table.add_row(*(escape(v or "") for v in (c.name, c.type, c.fingerprint, c.created, c.user, c.comment)))
    out.print(table)


@credentials.command()
@click.argument("name")
@click.pass_context
@_friendly
def show(ctx: click.Context, name: str) -> None:
    """Print a credential's public key line."""
    click.echo(_api(ctx).credential(name).public_key)


@credentials.command()
@click.argument("name")
@click.pass_context
@_friendly
def verify(ctx: click.Context, name: str) -> None:
    """Decrypt the private key and check that it matches the public key."""
    credential = _api(ctx).verify_credential(name)
    click.echo(f"'{name}' is usable ({credential.fingerprint})")


@credentials.command()
@click.argument("name")
@click.pass_context
@_friendly
def delete(ctx: click.Context, name: str) -> None:
    """Delete a credential from orch's store; print its public key, which stays on the cluster
    until you remove it there."""
    deleted = _api(ctx).delete_credential(name)
    credential = deleted.credential
    where = f"from orch's store, {deleted.where}"
    if credential is None:
        click.echo(f"deleted '{name}' {where}; its public key could not be read. orch did not touch the "
                   f"cluster: remove the key's line from {AUTHORIZED_KEYS} there yourself", err=True)
        return
    # stdout is only the key line, as for create: `grep -vxF "$(orch credentials delete x)"` finds it.
    click.echo(credential.public_key)
    click.echo(f"deleted '{name}' ({credential.fingerprint}) {where}. orch did not touch the cluster: the "
               f"public key above stays in {AUTHORIZED_KEYS} of {_account(credential.user)} wherever you added it, "
               "and still lets its holder log in; remove that line there", err=True)
