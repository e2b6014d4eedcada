"""The Runnable protocol: a job is submitted once, watched until it ends, and cancelled if orch is asked
to stop while it runs.

- `Runnable.submit` starts the job and reports its id (the fact TOSCA_JOB_ID, kept as the operation's
  output); `Runnable.run` is polled, fast at first then backing off, and reports TOSCA_JOB_STATUS
  (QUEUED/RUNNING while the job lives; COMPLETED, or anything else for a failure, with TOSCA_JOB_ERROR);
  `Runnable.cancel` stops it. Watch and cancel read the job id from the submit's output.
- On resume, a watch that was merely interrupted (orch died) watches the same job again; a job that
  failed or was cancelled is submitted anew: watching it again would only see it end the same way.

The scheduler asks this module what a watch's result means; the job's scheduler (Slurm, a local
process, ...) is the playbooks' business (playbooks/jobs/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from orchestrator.model import Step

SUBMIT, WATCH, CANCEL = "Runnable.submit", "Runnable.run", "Runnable.cancel"
STILL_RUNNING = ("QUEUED", "RUNNING", "")
COMPLETED = "COMPLETED"


def is_watch(step: Step) -> bool:
    return step.operation == WATCH


def is_submit(step: Step) -> bool:
    return step.operation == SUBMIT


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
