"""`orch catalogue`: add, list, show and remove the data catalogue's records, through the API.

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
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.api import Orchestrator, UsageError, default_home

BAD_INPUT = 2

out = Console(highlight=False, soft_wrap=True)


class CatalogueCliError(click.ClickException):
    exit_code = BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _friendly(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except UsageError as exc:
            raise CatalogueCliError(str(exc)) from None

    return wrapper


def _api(ctx: click.Context) -> Orchestrator:
    home = (ctx.obj or {}).get("home") or default_home().expanduser().resolve()
    return Orchestrator(Path(home))


def _size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


@click.group()
def catalogue() -> None:
    """The data catalogue: records of datasets, which a stage-in names as `catalogue:ID`."""


@catalogue.command()
@click.argument("record_file", metavar="DATASET.yaml", type=click.Path(dir_okay=False))
@click.pass_context
@_friendly
def add(ctx: click.Context, record_file: str) -> None:
    """Add the record a YAML (or JSON) file describes: id, title, locations, size, sha256, licence,
    keywords, created_by; created (UTC, default now) and description are optional."""
    record = _api(ctx).catalogue_add(record_file)
    click.echo(f"added {record.id} (catalogue:{record.id})")


@catalogue.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_friendly
def list_records(ctx: click.Context, as_json: bool) -> None:
    """Every record: id, title, size, where the data is."""
    records = _api(ctx).catalogue()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in records], indent=2))
        return
    if not records:
        out.print("no records (orch catalogue add DATASET.yaml)")
        return
    table = Table()
    table.add_column("id", no_wrap=True)  # whole: it is what `catalogue:ID` names
    for column in ("title", "size", "locations", "keywords"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(*(escape(v) for v in (r.id, r.title, _size(r.size), "\n".join(r.locations),
                                            ", ".join(r.keywords))))
    out.print(table)


@catalogue.command()
@click.argument("record_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_friendly
def show(ctx: click.Context, record_id: str, as_json: bool) -> None:
    """One record, every field (YAML, or JSON)."""
    record = _api(ctx).catalogue_record(record_id).as_dict()
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        click.echo(yaml.safe_dump(record, sort_keys=False, allow_unicode=True, width=120), nl=False)


@catalogue.command()
@click.argument("record_id", metavar="ID")
@click.pass_context
@_friendly
def remove(ctx: click.Context, record_id: str) -> None:
    """Forget a record (the data stays where it is)."""
    record = _api(ctx).catalogue_remove(record_id)
    click.echo(f"removed {record.id}; its data was not touched ({', '.join(record.locations)})")
