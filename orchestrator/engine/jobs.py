"""The Runnable protocol: a job is submitted once, watched until it ends, and cancelled if orch is asked
to stop while it runs.

- `Runnable.submit` starts the job and reports its id (the fact TOSCA_JOB_ID, kept as the operation's
  output); `Runnable.run` is polled, fast at first then backing off, and reports TOSCA_JOB_STATUS
  (QUEUED/RUNNING while the job lives; COMPLETED, or anything else for a failure, with TOSCA_JOB_ERROR);
  `Runnable.cancel` stops it. Watch and cancel read the job id from the submit's output. A submit that
  waited for the job's end may say so (TOSCA_JOB_STATUS: COMPLETED): its watch is then settled without a poll.
- The watches of one host whose playbook says it can (`orch_watches_many`) are polled together: one
  request per host and round lists their jobs, and each watch is settled from its line of the answer
  (below).
- On resume, a watch that was merely interrupted (orch died) watches the same job again; a job that
  failed or was cancelled is submitted anew: watching it again would only see it end the same way.

The scheduler asks this module what a watch's result means; the job's scheduler (Slurm, a local
process, ...) is the playbooks' business (playbooks/jobs/).
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import yaml

from orchestrator.executors.inventory import OperationRequest, Target
from orchestrator.executors.results import OperationResult
from orchestrator.model import Step

SUBMIT, WATCH, CANCEL = "Runnable.submit", "Runnable.run", "Runnable.cancel"
STILL_RUNNING = ("QUEUED", "RUNNING", "")
COMPLETED = "COMPLETED"


def is_watch(step: Step) -> bool:
    return step.operation == WATCH


def is_submit(step: Step) -> bool:
    return step.operation == SUBMIT


# Many jobs ready to be submitted at once go to the executor in runs of at most this many, one run at a time:
# the jobs of a run are watched as soon as it returns, while the next run submits, where one run of all of
# them (200 submits: about a minute) left the first jobs unwatched until the last one was submitted.
SUBMITS_PER_RUN = 20


def submit_runs(batch: list) -> list[list]:
    """A batch of prepared submits, in the runs the executor gets them in (SUBMITS_PER_RUN each)."""
    return [batch[i:i + SUBMITS_PER_RUN] for i in range(0, len(batch), SUBMITS_PER_RUN)]


def must_run_to_its_end(step: Step) -> bool:
    """A job's watch and a job's cancel run to their end even while cancelling."""
    return step.operation in (WATCH, CANCEL)


def reads_job_id(step: Step) -> bool:
    return step.operation in (WATCH, CANCEL)


def cancel_step(node: str) -> Step:
    return Step(f"{node}.cancel", node, operation=CANCEL)


@dataclass(frozen=True)
class JobReport:
    """What one poll of a job said."""

    job_id: str
    status: str
    error: str

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> JobReport:
        return cls(str(facts.get("TOSCA_JOB_ID") or "?"), str(facts.get("TOSCA_JOB_STATUS", "")).upper(),
                   str(facts.get("TOSCA_JOB_ERROR") or "").strip())

    @property
    def running(self) -> bool:
        return self.status in STILL_RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status == COMPLETED

    def failure(self) -> str:
        return f"job {self.job_id} failed" + (f": {self.error[-1500:]}" if self.error else "")


class PollBackoff:
    """Intervals between polls of each job: fast at first, backing off, capped. A job's end is noticed
    within one interval plus one poll: both stay under the 2 s promise."""

    FIRST = 0.2
    FACTOR = 1.5
    MAX = 1.0

    def __init__(self) -> None:
        self.intervals: dict[str, float] = {}

    def next(self, step_id: str) -> float:
        interval = min(self.MAX, self.intervals.get(step_id, self.FIRST / self.FACTOR) * self.FACTOR)
        self.intervals[step_id] = interval
        return interval


def steps_kept_on_resume(graph: nx.DiGraph, statuses: Mapping[str, str]) -> set[str]:
    """The steps of an execution that a resume keeps: those that succeeded, except the submit of a job
    whose watch failed or was cancelled (that job is submitted anew)."""
    done = {s for s, st in statuses.items() if st in ("done", "skipped")}
    for step_id, status in statuses.items():
        if status not in ("failed", "cancelled") or step_id not in graph:
            continue
        failed = graph.nodes[step_id]["step"]
        if not is_watch(failed):
            continue
        done -= {n for n in graph.nodes if is_submit(graph.nodes[n]["step"])
                 and graph.nodes[n]["step"].node == failed.node
                 and graph.nodes[n]["step"].workflow_step == failed.workflow_step}
    return done


# -- many watches of one host in one poll ---------------------------------------------------------------------
# A watch playbook that says so (`orch_watches_many: true` among its play's vars) is given all the watches of
# one host that are due together as ONE inventory alias, their jobs in ORCH_WATCHES, and answers for each in
# ORCH_JOB_STATES (playbooks/jobs/schedulers/slurm/state_many.yaml). A poll round then costs one task and one
# scheduler query per host whatever the number of jobs, and its long poll returns as soon as any of them
# changes, where one alias per job made a round last as long as Ansible took over all of them.

MANY_MARK = "orch_watches_many"
MANY_GAP = 0.2  # between two polls of a host's watches: the long poll itself waits on the host
# ids sent in ORCH_WATCHES: one word each (Slurm's "123", "123_4", "123;cluster"); others are polled alone
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.;:+-]+")


@functools.cache
def watches_many(playbook: str) -> bool:
    """Whether a watch playbook says it can poll many watches of one host at once (read once per command)."""
    try:
        plays = yaml.safe_load(Path(playbook).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(plays, list) and any(
        isinstance(play, dict) and isinstance(play.get("vars"), dict) and play["vars"].get(MANY_MARK) is True
        for play in plays)


def groupable(request: OperationRequest) -> bool:
    return watches_many(request.playbook) and _PLAIN_ID.fullmatch(str(request.variables.get("TOSCA_JOB_ID"))) \
        is not None


def group_key(request: OperationRequest) -> tuple[str, Target]:
    """Watches polled together: same playbook, same host reached the same way."""
    return request.playbook, request.target


@dataclass(frozen=True)
class WatchGroup:
    """One request polling several watches of one host."""

    request: OperationRequest
    members: tuple[OperationRequest, ...]

    def results(self, result: OperationResult | None) -> dict[str, OperationResult]:
        """Each member's result from the group's: its line of ORCH_JOB_STATES, or the group's failure."""
        if result is None:
            result = OperationResult(self.request.alias, ok=False, message="no result for the poll of the jobs")
        if not result.ok:
            return {m.alias: OperationResult(m.alias, ok=False, unreachable=result.unreachable,
                                             failed_task=result.failed_task, message=result.message)
                    for m in self.members}
        lines = {}
        for line in result.facts.get("ORCH_JOB_STATES") or []:
            fields = str(line).split()
            if len(fields) >= 2:
                lines[fields[0]] = fields[1:]
        return {m.alias: _member_result(m, lines.get(m.alias)) for m in self.members}


def _member_result(member: OperationRequest, fields: list[str] | None) -> OperationResult:
    job_id = member.variables.get("TOSCA_JOB_ID")
    if not fields:
        return OperationResult(member.alias, ok=False, message=f"the poll of many jobs did not report job {job_id}")
    try:
        error = base64.b64decode(fields[1]).decode(errors="replace") if len(fields) > 1 else ""
    except ValueError:
        error = fields[1]
    return OperationResult(member.alias, facts={"TOSCA_JOB_ID": job_id, "TOSCA_JOB_STATUS": fields[0],
                                                "TOSCA_JOB_ERROR": error})


def group_watches(requests: list[OperationRequest], watches: Mapping[str, str]
                  ) -> tuple[list[OperationRequest], list[WatchGroup]]:
    """The requests to run: those not in `watches` (alias -> the job status last seen, '' if none) as they are,
    the watches whose playbook polls many as one request per host. The groups turn its result back into
    one per watch."""
    kept: list[OperationRequest] = []
    by_key: dict[tuple[str, Target], list[OperationRequest]] = {}
    for request in requests:
        if request.alias in watches and groupable(request):
            by_key.setdefault(group_key(request), []).append(request)
        else:
            kept.append(request)
    groups = []
    for index, members in enumerate(by_key.values()):
        listed = [{"watch": m.alias, "TOSCA_JOB_ID": str(m.variables["TOSCA_JOB_ID"]), "status": watches[m.alias]}
                  for m in members]
        first = members[0]
        request = OperationRequest(f"watches_{index}", first.playbook, first.target, {"ORCH_WATCHES": listed},
                                   label=f"the watch of {len(members)} job(s)")
        groups.append(WatchGroup(request, tuple(members)))
        kept.append(request)
    return kept, groups
