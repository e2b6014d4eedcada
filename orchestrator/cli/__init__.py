"""The `orch` command line: parse arguments, call the API (orchestrator.api), render. Nothing else.

Exit codes: 0 ok, 1 an operation failed, 2 bad input or usage. No traceback reaches the user unless
ORCH_DEBUG=1. Command groups of optional parts (`orch sim`) are plugged in by the entry point group
`orch.commands`, so this package never imports them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from orchestrator import render
from orchestrator.api import (
    DeploymentBusy,
    DeployStart,
    LoadError,
    Orchestrator,
    Outcome,
    UsageError,
    default_home,
    read_inputs,
)
from orchestrator.cli.catalogue import catalogue
from orchestrator.cli.credentials import credentials
from orchestrator.cli.progress import ProgressReporter

RENDER_FORMATS = render.FORMATS

OK, FAILED, BAD_INPUT = 0, 1, 2

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _orchestrator(ctx: click.Context, workers: int = 4) -> Orchestrator:
    return Orchestrator(ctx.obj["home"], workers=workers)


def _inputs(input_files: tuple[str, ...], assignments: tuple[str, ...]) -> dict[str, Any]:
    return read_inputs(list(input_files), list(assignments))


def _json(value: Any) -> None:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    out.print_json(json.dumps(value, default=str))


def _problems_exit(problems: list) -> None:
    err.print(f"[red]{len(problems)} problem{'s' if len(problems) != 1 else ''}:[/]")
    for problem in problems:
        err.print(f"  {problem}", markup=False)
    sys.exit(BAD_INPUT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orch", prog_name="orch", message="%(prog)s %(version)s")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where orch keeps its state (default $ORCH_HOME or ~/.local/share/orch).")
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """orch: TOSCA topologies made real with Ansible, for HPC workflows."""
    ctx.obj = {"home": (home or default_home()).expanduser().resolve()}


inputs_options = [
    click.option("-i", "--inputs", "input_files", multiple=True, type=click.Path(dir_okay=False),
                 help="YAML file of input values (repeatable; a site file works here)."),
    click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="One input value (repeatable)."),
    click.option("--allow-remote-imports", is_flag=True, help="Allow http(s) imports to be fetched."),
]


def with_inputs(f):
    for option in reversed(inputs_options):
        f = option(f)
    return f


@cli.command()
@click.argument("topology", type=click.Path(dir_okay=True))
@with_inputs
@click.pass_context
def validate(ctx: click.Context, topology: str, input_files: tuple[str, ...], assignments: tuple[str, ...],
             allow_remote_imports: bool) -> None:
    """Check a topology (or a type library); print every problem at once (exit 2 if any)."""
    found = _orchestrator(ctx).validate(topology, _inputs(input_files, assignments),
                                        allow_remote_imports=allow_remote_imports)
    if found.kind == "types":
        out.print(f"[green]valid[/]: {topology} (a type library: its definitions are sound)")
        return
    out.print(f"[green]valid[/]: {topology} ({found.nodes} nodes, {found.workflows} workflows)")
    if found.needs_inputs:
        out.print(f"deploy will need a value for: {', '.join(found.needs_inputs)} (-i FILE or --set NAME=VALUE)",
                  markup=False)


@cli.command()
@click.argument("topology", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(RENDER_FORMATS), default="text")
@click.option("--undeploy", is_flag=True, help="Show the undeploy plan instead.")
@with_inputs
@click.pass_context
def plan(ctx: click.Context, topology: str, fmt: str, undeploy: bool, input_files: tuple[str, ...],
         assignments: tuple[str, ...], allow_remote_imports: bool) -> None:
    """Show the ordered operations of a deploy; nothing runs."""
    view = _orchestrator(ctx).plan(topology, _inputs(input_files, assignments), undeploy=undeploy,
                                   allow_remote_imports=allow_remote_imports)
    if fmt != "text":
        view = dataclasses.replace(view, implemented=None)
    out.print(render.RENDERERS[fmt](view), markup=False)


@cli.command()
@click.argument("topology", required=False, type=click.Path())
@click.option("-n", "--name", help="Deployment name (default: the topology file's stem).")
@click.option("--workers", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Operations (or batches of operations) run at once.")
@click.option("--resume", "resume_name", metavar="NAME", help="Continue a failed or interrupted deployment.")
@click.option("--from-registry", "from_registry", metavar="[REGISTRY/]WORKFLOW",
              help="Deploy a workflow of a registry (orch registry list) instead of a TOPOLOGY file.")
@click.option("--version", "registry_version", metavar="REV",
              help="With --from-registry: the git revision to deploy (default: the latest commit).")
@click.option("-v", "--verbose", is_flag=True, help="Show each Ansible task.")
@with_inputs
@click.pass_context
def deploy(ctx: click.Context, topology: str | None, name: str | None, workers: int, resume_name: str | None,
           from_registry: str | None, registry_version: str | None, verbose: bool, input_files: tuple[str, ...],
           assignments: tuple[str, ...], allow_remote_imports: bool) -> None:
    """Deploy a topology (or a registry's workflow): run its install workflow."""
    if from_registry is not None and (topology or resume_name):
        raise UsageError("--from-registry takes the place of TOPOLOGY, and a resume needs only --resume NAME")
    if registry_version is not None and from_registry is None:
        raise UsageError("--version goes with --from-registry")
    if resume_name is None and topology is None and from_registry is None:
        raise UsageError("deploy needs a TOPOLOGY file, --from-registry WORKFLOW, or --resume NAME")
    name = resume_name or name or (from_registry.rpartition("/")[2] if from_registry else Path(topology).stem)
    started: list[DeployStart] = []

    def on_start(start: DeployStart) -> None:
        started.append(start)
        err.print(_deploy_start_line(start), markup=False)

    orch, inputs = _orchestrator(ctx, workers), _inputs(input_files, assignments)
    running = {"reporter": ProgressReporter(err, verbose), "cancel": _cancel_on_signals(),
               "allow_remote_imports": allow_remote_imports, "on_start": on_start}
    if from_registry is not None:
        # the workflow's own site file gives the inputs unless -i files are given
        result = orch.deploy_from_registry(
            name, from_registry, inputs, version=registry_version, default_site=not input_files,
            on_checkout=lambda c: err.print(f"{c.registry}/{c.workflow} at {c.revision}"
                                            + (f" (inputs from its {Path(c.site).name})"
                                               if c.site and not input_files else ""), markup=False),
            **running)
    else:
        result = orch.deploy(name, topology, inputs, resume=resume_name is not None, **running)
    if result.nothing_to_do:
        return
    workflows = started[0].workflows if started else ()
    _finish("deploy", name, result.outcome, f"orch run {name}" if workflows else f"orch outputs {name}")


def _deploy_start_line(start: DeployStart) -> str:
    if start.mode == "nothing_to_resume":
        return (f"{start.name} is deployed: nothing to resume (to run every operation again: "
                f"orch deploy TOPOLOGY -n {start.name})")
    if start.mode == "resume":
        return f"resuming the deploy of {start.name}: {start.kept} completed operations kept, the rest runs"
    if start.mode == "again":
        return (f"deploying {start.name} again (it exists, {start.previous_status}): every operation runs "
                f"again with this topology and these inputs; to keep what completed use "
                f"orch deploy --resume {start.name}")
    return f"deploying {start.name}"


@cli.command()
@click.argument("name")
@click.option("--workers", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("-v", "--verbose", is_flag=True)
@click.pass_context
def undeploy(ctx: click.Context, name: str, workers: int, verbose: bool) -> None:
    """Undeploy: stop and delete every node, in reverse order."""
    orch = _orchestrator(ctx, workers)
    err.print(f"undeploying [bold]{name}[/]")
    result = orch.undeploy(name, reporter=ProgressReporter(err, verbose), cancel=_cancel_on_signals())
    _finish("undeploy", name, result.outcome, None)


@cli.command()
@click.argument("name")
@click.option("-w", "--workflow", help="Workflow to run (default: the topology's only custom workflow).")
@click.option("--cancel", "cancel_id", metavar="EXEC_ID", help="Cancel a running execution.")
@click.option("--resume", "resume_id", metavar="EXEC_ID",
              help="Replay the failed and not-yet-run steps of an execution.")
@click.option("--workers", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Show each Ansible task.")
@click.option("-i", "--inputs", "input_files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML file of workflow input values (repeatable).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="One workflow input (repeatable).")
@click.pass_context
def run(ctx: click.Context, name: str, workflow: str | None, cancel_id: str | None, resume_id: str | None,
        workers: int, verbose: bool, input_files: tuple[str, ...], assignments: tuple[str, ...]) -> None:
    """Run a workflow of a deployment (prints the execution id, then follows it)."""
    if cancel_id:
        status = _orchestrator(ctx).cancel(name, cancel_id)
        out.print(f"{cancel_id}: {status}")
        return

    def started(execution_id: str) -> None:
        out.print(execution_id)
        err.print(f"execution [bold]{execution_id}[/] of {name}; follow it with: orch logs {name} {execution_id} -f")

    result = _orchestrator(ctx, workers).run(
        name, workflow, _inputs(input_files, assignments), resume=resume_id,
        reporter=ProgressReporter(err, verbose), cancel=_cancel_on_signals(), on_start=started)
    outcome = result.outcome
    if result.nothing_to_do:
        err.print(f"execution {result.execution_id} succeeded: nothing to resume")
        return
    if outcome.ok:
        err.print(f"[green]execution {result.execution_id} done[/] ({outcome.ran} operations run)")
        return
    if outcome.cancelled:
        err.print(f"execution {result.execution_id} cancelled", style="yellow")
    for failure in outcome.failures:
        err.print(f"failed: {failure}", markup=False, style="red")
    if not outcome.cancelled:
        err.print(f"fix the cause, then: orch run {name} --resume {result.execution_id}")
    sys.exit(FAILED)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def executions(ctx: click.Context, name: str, as_json: bool) -> None:
    """Executions of a deployment's workflows, with their inputs, status and outputs."""
    rows = _orchestrator(ctx).executions(name)
    if as_json:
        _json(rows)
        return
    table = Table("id", "workflow", "status", "started", "took", "error")
    for row in rows:
        took = f"{row.ended - row.started:.1f}s" if row.ended else ""
        table.add_row(row.id, row.workflow, row.status,
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.started)), took, row.error or "")
    out.print(table)
    for row in rows:
        if row.resume:
            out.print(f"{row.id} was interrupted: its process is gone; resume it with: {row.resume}", markup=False)


@cli.command()
@click.argument("name")
@click.argument("execution_id", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing events until the execution ends.")
@click.pass_context
def logs(ctx: click.Context, name: str, execution_id: str | None, follow: bool) -> None:
    """Events of a deployment (or of one execution): Ansible tasks as they finish, job states, steps."""
    orch = _orchestrator(ctx)
    if execution_id is None and follow:
        execution_id = orch.latest_execution(name)
    events = orch.follow(name, execution_id) if follow else orch.events(name, execution_id)
    for event in events:
        where = f"{event.node} {event.operation or ''}".strip() if event.node else ""
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        out.print(f"{stamp} {event.kind:<10} {where + ': ' if where else ''}{event.message}", markup=False)
    if follow:
        execution = orch.execution(name, execution_id)
        if execution.resume:
            err.print(f"execution {execution_id} was interrupted (its process is gone); "
                      f"resume it with: {execution.resume}", markup=False)


def _finish(verb: str, name: str, outcome: Outcome, hint: str | None) -> None:
    if outcome.ok:
        err.print(f"[green]{verb} of {name} done[/] ({outcome.ran} operations run)")
        if hint:
            err.print(f"next: {hint}")
        return
    if outcome.cancelled:
        err.print(f"[yellow]{verb} of {name} cancelled[/]; continue with: orch deploy --resume {name}")
    for failure in outcome.failures:
        err.print(f"failed: {failure}", markup=False, style="red")
    if verb == "deploy":
        err.print(f"fix the cause, then: orch deploy --resume {name}")
    sys.exit(FAILED)


def _cancel_on_signals() -> threading.Event:
    """First Ctrl-C/SIGTERM: stop starting operations and let running ones end; second: leave now.
    The CLI owns the process's signals; the API never touches them."""
    cancel = threading.Event()

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        err.print("[yellow]stopping: letting running operations finish (Ctrl-C again to leave now)[/]")
        cancel.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return cancel


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, name: str, as_json: bool) -> None:
    """Per node: state, host, last operation, attributes."""
    view = _orchestrator(ctx).status(name)
    if as_json:
        _json(view)
        return
    out.print(f"{name}: {view.status}  ({view.topology})", markup=False)
    if view.interrupted:
        out.print(f"interrupted: its process is gone; continue with: {view.resume}", markup=False)
    table = Table("node", "state", "host", "last operation")
    for node, info in view.nodes.items():
        last = info.last_operation
        table.add_row(node, info.state, info.host or "", f"{last.operation} {last.status}" if last else " ")
    out.print(table)
    # attributes on lines of their own: paths and versions are too long for a table column at 80 columns
    for node, info in view.nodes.items():
        for key, value in info.attributes.items():
            out.print(f"{node}.{key}: {value}", markup=False)


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outputs(ctx: click.Context, name: str, as_json: bool) -> None:
    """The deployment's outputs."""
    view = _orchestrator(ctx).outputs_view(name)
    if view.latest is not None and view.latest.status != "done":
        err.print(f"note: the latest execution {view.latest.id} is {view.latest.status}; its results are not "
                  + (f"these (they are execution {view.latest_done.id}'s)" if view.latest_done
                     else "there: no execution has succeeded"), markup=False)
    if as_json:
        _json(view.values)
        return
    for key, value in view.values.items():
        out.print(f"{key}: {value}", markup=False)


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_deployments(ctx: click.Context, as_json: bool) -> None:
    """Deployments and their status."""
    rows = _orchestrator(ctx).list()
    if as_json:
        _json(rows)
        return
    if not rows:
        out.print("no deployments")
        return
    table = Table("name", "status", "topology")
    for row in rows:
        table.add_row(row.name, row.status, row.topology)
    out.print(table)


@cli.group()
def registry() -> None:
    """Registries: folders or git repositories of workflows (topology, application, site file), each
    workflow deployable by name and version with orch deploy --from-registry."""


@registry.command("add")
@click.argument("source")
@click.option("--name", help="The registry's name (default: its folder's name).")
@click.pass_context
def registry_add(ctx: click.Context, source: str, name: str | None) -> None:
    """Register a folder or a local git repository (a path or a file:// URL)."""
    added = _orchestrator(ctx).add_registry(source, name)
    out.print(f"registry {added.name}: {added.kind} {added.source}, {len(added.workflows)} workflow"
              f"{'s' if len(added.workflows) != 1 else ''}: {', '.join(w.name for w in added.workflows)}",
              markup=False)


@registry.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def registry_list(ctx: click.Context, as_json: bool) -> None:
    """Registries, their workflows and each workflow's versions (newest first)."""
    rows = _orchestrator(ctx).registries()
    if as_json:
        _json(rows)
        return
    if not rows:
        out.print("no registries (orch registry add FOLDER)")
        return
    for row in rows:
        out.print(f"{row.name}: {row.kind} {row.source}" + (f": {row.problem}" if row.problem else ""),
                  markup=False)
        for workflow in row.workflows:
            out.print(f"  {workflow.name}" + (f": {workflow.description}" if workflow.description else "")
                      + (f" (cannot be deployed: {workflow.problem})" if workflow.problem else ""), markup=False)
            for version in workflow.versions:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(version.committed)) if version.committed else ""
                out.print(f"    {version.revision[:12]:<12}  {when:<16}  {version.subject}".rstrip(), markup=False)


@registry.command("remove")
@click.argument("name")
@click.pass_context
def registry_remove(ctx: click.Context, name: str) -> None:
    """Forget a registry (deployments made from it keep their copies)."""
    _orchestrator(ctx).remove_registry(name)
    out.print(f"registry {name} removed")


cli.add_command(credentials)
cli.add_command(catalogue)


def _register_plugged_groups() -> None:
    """Groups of optional parts, found by the entry point group `orch.commands` (`orch sim` when the
    simulated site's dependencies are there)."""
    for entry in entry_points(group="orch.commands"):
        try:
            cli.add_command(entry.load(), entry.name)
        except ImportError:
            continue


_register_plugged_groups()


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="orch", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(BAD_INPUT)
    except LoadError as exc:
        _problems_exit(exc.problems)
    except (UsageError, DeploymentBusy) as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(BAD_INPUT)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(FAILED)
    except Exception as exc:  # the last line of defence against tracebacks
        if os.environ.get("ORCH_DEBUG"):
            raise
        err.print(f"orch: internal error: {type(exc).__name__}: {exc} (set ORCH_DEBUG=1 for details)",
                  markup=False)
        sys.exit(FAILED)
