"""What the API hands out: plain, frozen records. Never a store row, a networkx graph or a tosca-parser
object, so the CLI, the service and a test read the same thing (dataclasses.asdict gives its JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.credentials.record import Credential
from orchestrator.engine import scheduler
from orchestrator.engine.scheduler import Failure
from orchestrator.model import PlanView, Validation
from orchestrator.store.base import DeploymentStatus, Event, ExecutionStatus

__all__ = [
    "CreatedCredential",
    "Credential",
    "DeletedCredential",
    "DeployStart",
    "DeploymentStatus",
    "DeploymentSummary",
    "DeploymentView",
    "Event",
    "ExecutionStatus",
    "ExecutionView",
    "Failure",
    "LastOperation",
    "NodeView",
    "Outcome",
    "OutputsView",
    "PlanView",
    "Result",
    "Validation",
]


@dataclass(frozen=True)
class Outcome:
    """How a deploy, undeploy or run ended: ok, or cancelled, or failed with its failures (each naming
    node, operation, host, task and message); `ran`: operations run."""

    ok: bool = True
    cancelled: bool = False
    failures: tuple[Failure, ...] = ()
    ran: int = 0

    @classmethod
    def of(cls, run: scheduler.Outcome) -> Outcome:
        return cls(run.ok, run.cancelled, tuple(run.failures), run.ran)


@dataclass(frozen=True)
class Result:
    deployment: str
    execution_id: str
    outcome: Outcome
    nothing_to_do: bool = False


@dataclass(frozen=True)
class DeployStart:
    """What a deploy is about to do, told once its topology has loaded and its lock is held.

    mode: "new"; "again" (the deployment exists: every operation runs again with this topology and
    these inputs); "resume" (`kept` operations completed before are kept); "nothing_to_resume"."""

    name: str
    mode: str
    previous_status: str | None
    kept: int
    workflows: tuple[str, ...] = ()
    execution_id: str = ""


@dataclass(frozen=True)
class ExecutionView:
    """An execution; one still running whose process is gone is `interrupted`, with the command that
    resumes it."""

    id: str
    workflow: str
    status: str
    started: float
    ended: float | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    resume: str | None = None

    @property
    def over(self) -> bool:
        return self.status not in (ExecutionStatus.RUNNING, ExecutionStatus.QUEUED)


@dataclass(frozen=True)
class LastOperation:
    operation: str
    status: str
    host: str | None
    error: str | None


@dataclass(frozen=True)
class NodeView:
    state: str
    host: str | None
    last_operation: LastOperation | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentView:
    name: str
    status: str
    interrupted: bool
    resume: str | None
    topology: str
    nodes: dict[str, NodeView]


@dataclass(frozen=True)
class DeploymentSummary:
    name: str
    status: str
    topology: str
    updated: float


@dataclass(frozen=True)
class OutputsView:
    """The deployment's outputs, and the runs they speak for: outputs show the latest successful run's
    results; `latest` is the latest run of any status (None: no run yet)."""

    values: dict[str, Any]
    latest: ExecutionView | None
    latest_done: ExecutionView | None


@dataclass(frozen=True)
class CreatedCredential:
    credential: Credential
    where: str  # the backend that keeps it, in words


@dataclass(frozen=True)
class DeletedCredential:
    name: str
    credential: Credential | None  # None: its record was damaged; deleted all the same
    where: str
