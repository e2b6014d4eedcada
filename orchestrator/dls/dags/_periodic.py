"""Periodic transfers: a DataPipeline with a `schedule` becomes a scheduled Airflow DAG (issue 17).

A deployment does not write DAG code: it writes a spec, `$ORCH_HOME/dls/periodic/<dag id>.json`
({dag_id, schedule, kind, conf}: the same conf the Airflow mover sends, which holds no secret), and this file,
which Airflow parses from orch's DAG folder with ORCH_HOME in its environment, makes one DAG per spec. So
nothing generated lands in orch's package folder, and removing the spec removes the DAG at the next parse.

Schedules: a cron expression of five fields or one of Airflow's presets (@hourly, @daily, ...), given to
Airflow as they are, or an interval `@every N` with a unit s, m, h or d (`@every 15s`), which Airflow takes as
a timedelta. A periodic DAG is created paused (the deployment unpauses it once Airflow has it), runs one
transfer at a time and does not catch up.

The same module is the command line the periodic playbooks run with orch's core install (no Airflow here):
`python -m orchestrator.dls.dags._periodic {start,stop} ...`, and `summary()` is what `orch status` shows."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2024, 1, 1, tzinfo=UTC)
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly",
           "@annually", "@midnight")
_EVERY = re.compile(r"@every\s+([1-9][0-9]*)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?LW#-]+")
# the transfer each of orch's DAGs makes (orchestrator/dls/transfers.py): a periodic DAG makes the same
KINDS = {"orch_stagein": "stagein", "orch_stageout": "stageout"}
PARSE_WAIT = 180.0     # bound on waiting for Airflow to parse a new spec (min_file_process_interval: local.py)


# -- pure ---------------------------------------------------------------------------------------------------------

def schedule_problem(text: str) -> str:
    """Why `text` is no schedule orch gives Airflow, or ''."""
    text = text.strip()
    if _EVERY.fullmatch(text) or text in PRESETS:
        return ""
    fields = text.split()
    if len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields):
        return ""
    return (f"{text!r} is neither a cron expression of five fields (\"*/5 * * * *\"), an Airflow preset "
            f"({', '.join(PRESETS[2:])}) nor an interval \"@every N\" with a unit s, m, h or d (\"@every 15s\")")


def airflow_schedule(text: str) -> str | timedelta:
    """What the DAG's `schedule` is: a timedelta for `@every N<unit>`, else the text itself."""
    every = _EVERY.fullmatch(text.strip())
    if every:
        return timedelta(**{_UNITS[every.group(2)]: int(every.group(1))})
    return text.strip()


def dag_id(deployment: str, node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"orch_periodic_{deployment}_{node}")


def specs_folder(orch_home: Path) -> Path:
    return Path(orch_home) / "dls" / "periodic"


def summary(dag: Mapping[str, Any] | None, last: Mapping[str, Any] | None, failed: int, succeeded: int) -> dict:
    """What `orch status` says of a periodic DAG, from Airflow's answers (Airflow 3's fields, or 2's)."""
    if dag is None:
        return {"present": False}
    next_run = dag.get("next_dagrun_run_after") or dag.get("next_dagrun_logical_date") or dag.get("next_dagrun")
    last_run = None
    if last:
        last_run = {"state": last.get("state"), "at": last.get("end_date") or last.get("start_date")
                    or last.get("logical_date") or last.get("run_after")}
    return {"present": True, "paused": bool(dag.get("is_paused")), "next_run": next_run, "last_run": last_run,
            "failed": failed, "succeeded": succeeded}


# -- with Airflow's REST API (orchestrator.dls.client) --------------------------------------------------------------

def _runs(client: Any, dag: str, query: str) -> dict:
    from orchestrator.dls.client import _quote
    return client.call("GET", f"/dags/{_quote(dag)}/dagRuns?{query}")[1]


def query(client: Any, dag: str) -> dict:
    """summary() of the DAG `dag` as the service has it now."""
    found = client.dag(dag)
    if found is None:
        return summary(None, None, 0, 0)
    latest = _runs(client, dag, "order_by=-start_date&limit=1").get("dag_runs") or [None]
    failed = _runs(client, dag, "state=failed&limit=1").get("total_entries", 0)
    succeeded = _runs(client, dag, "state=success&limit=1").get("total_entries", 0)
    return summary(found, latest[0], failed, succeeded)


def _set_paused(client: Any, dag: str, paused: bool) -> None:
    from orchestrator.dls.client import _quote
    client.call("PATCH", f"/dags/{_quote(dag)}", {"is_paused": paused})


def start(client: Any, folder: Path, spec: Mapping[str, Any], wait: float = PARSE_WAIT) -> None:
    """Write the spec, wait until Airflow has parsed it into a DAG, and unpause that."""
    from orchestrator.dls.client import AirflowError
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{spec['dag_id']}.json"
    temporary = path.with_suffix(".json.tmp")   # never a half-written spec for a parse to read
    temporary.write_text(json.dumps(spec))
    temporary.chmod(0o600)
    temporary.replace(path)
    deadline = time.monotonic() + wait
    while client.dag(spec["dag_id"]) is None:
        if time.monotonic() > deadline:
            raise AirflowError(f"Airflow did not parse the periodic DAG {spec['dag_id']} ({path}) within "
                               f"{wait:.0f} s: is its DAG processor running, with ORCH_HOME={folder.parent.parent}?")
        time.sleep(1)
    _set_paused(client, spec["dag_id"], False)


def stop(client: Any, folder: Path, dag: str, settle: float = 15.0, wait: float = 600.0) -> None:
    """Pause the DAG, let a run under way end (the node's delete removes its target next), remove the spec,
    delete the DAG from Airflow. A parse that began before the spec was gone may bring it back once (paused:
    periodic DAGs are created paused), so it is deleted again within `settle`."""
    from orchestrator.dls.client import _quote
    if client.dag(dag) is not None:
        _set_paused(client, dag, True)
        deadline = time.monotonic() + wait
        while any(_runs(client, dag, f"state={s}&limit=1").get("total_entries", 0) for s in ("queued", "running")):
            if time.monotonic() > deadline:
                break  # deleting the DAG below ends its runs
            time.sleep(1)
    (folder / f"{dag}.json").unlink(missing_ok=True)
    deadline = time.monotonic() + settle
    while True:
        if client.dag(dag) is not None:
            client.call("DELETE", f"/dags/{_quote(dag)}", ok=(200, 204, 404))
        if time.monotonic() > deadline:
            return
        time.sleep(1)


# -- the DAGs, when Airflow parses this file ----------------------------------------------------------------------

def periodic_dag(spec: Mapping[str, Any]) -> Any:
    """The DAG a spec describes: one task that runs transfers.run(kind, conf) on the schedule."""
    try:
        from airflow.sdk import dag, task
    except ImportError:  # Airflow 2
        from airflow.decorators import dag, task
    kind, conf = spec["kind"], dict(spec["conf"])

    @dag(dag_id=spec["dag_id"], schedule=airflow_schedule(spec["schedule"]), start_date=START, catchup=False,
         is_paused_upon_creation=True, max_active_runs=1, tags=["orch", "periodic"],
         doc_md=f"orch's periodic transfer ({kind}) on schedule {spec['schedule']}", default_args={"retries": 0})
    def periodic_dag_() -> None:
        @task(task_id="transfer")
        def transfer() -> dict[str, Any]:
            from orchestrator.dls.transfers import run
            return run(kind, conf)

        transfer()

    return periodic_dag_()


def _load_specs(environ: Mapping[str, str]) -> list[dict]:
    if not environ.get("ORCH_HOME"):
        return []
    specs = []
    for path in sorted(specs_folder(Path(environ["ORCH_HOME"])).glob("*.json")):
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # removed while we listed it
        if not schedule_problem(str(spec.get("schedule", ""))) and spec.get("kind") in KINDS.values():
            specs.append(spec)
    return specs


if __name__ != "__main__" and "airflow" in sys.modules:  # parsed by Airflow (or a task runner)
    for _spec in _load_specs(os.environ):
        periodic_dag(_spec)


# -- the command line of the periodic playbooks ----------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.dls.dags._periodic",
                                     description="Start or stop a periodic transfer on the local Airflow.")
    parser.add_argument("--service", required=True, help="the local Airflow's service file (orch dls up)")
    parser.add_argument("--folder", required=True, help="the specs' folder ($ORCH_HOME/dls/periodic)")
    parser.add_argument("--dag", required=True)
    verbs = parser.add_subparsers(dest="verb", required=True)
    begin = verbs.add_parser("start")
    begin.add_argument("--node", required=True)
    begin.add_argument("--schedule", required=True)
    begin.add_argument("--transfer-dag", required=True, help="the DAG the Airflow mover would trigger")
    begin.add_argument("--conf-file", required=True)
    verbs.add_parser("stop")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from orchestrator.dls.client import AirflowError, Client, Service
    args = _parser().parse_args(argv)
    try:
        client = Client(Service.from_file(Path(args.service)))
        folder = Path(args.folder)
        if args.verb == "start":
            problem = schedule_problem(args.schedule)
            if problem:
                raise ValueError(f"{args.node}: property schedule: {problem}")
            if args.transfer_dag not in KINDS:
                raise ValueError(f"{args.node}: a schedule runs orch's own transfers ({', '.join(KINDS)}); "
                                 f"dls_dag {args.transfer_dag!r} is not one")
            conf = json.loads(Path(args.conf_file).read_text())
            start(client, folder, {"dag_id": args.dag, "schedule": args.schedule.strip(),
                                   "kind": KINDS[args.transfer_dag], "conf": conf})
        else:
            stop(client, folder, args.dag)
    except (AirflowError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"dag_id": args.dag}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
