"""The store's port: the records it keeps, their status values, and the protocol a store implements.

The engine and the API speak to a `Store`; `store/sqlite.py` is one. A PostgreSQL store is another
module implementing the same protocol (the transactions named in each method's doc are the contract:
what is written together, a crash never splits).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class DeploymentStatus(StrEnum):
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNDEPLOYING = "undeploying"
    UNDEPLOY_FAILED = "undeploy_failed"


class ExecutionStatus(StrEnum):
    QUEUED = "queued"  # waits for its deployment to be free (the service runs one execution at a time per deployment)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # never stored: the API's word for a running execution whose process is gone
    INTERRUPTED = "interrupted"


class StepStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class RunStatus(StrEnum):
    """An operation run: one attempt of one operation on one host."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StoreError(Exception):
    pass


class DeploymentBusy(StoreError):
    pass


@dataclass(frozen=True)
class Deployment:
    name: str
    topology_path: str
    template_file: str
    inputs: dict[str, Any]
    status: str
    created: float
    updated: float


@dataclass(frozen=True)
class OperationRun:
    id: int
    execution_id: str
    step_id: str
    node: str
    operation: str
    host: str | None
    status: str
    started: float
    ended: float | None
    outputs: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Execution:
    id: str
    deployment: str
    workflow: str
    status: str
    inputs: dict[str, Any]
    started: float
    ended: float | None
    error: str | None
    outputs: dict[str, Any] | None = None


@dataclass(frozen=True)
class Event:
    id: int
    execution_id: str | None
    ts: float
    kind: str
    node: str | None
    operation: str | None
    message: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class Lock:
    """The one command at work on a deployment: its owner token, and the execution it runs once known."""

    deployment: str
    owner: str
    command: str
    since: float
    pid: int
    live: bool
    execution_id: str | None = None


@dataclass(frozen=True)
class User:
    """A user of the service. Their token is kept only as a hash."""

    name: str
    admin: bool
    created: float


@dataclass(frozen=True)
class Exposed:
    """A deployed workflow offered to the service's users under a public name (app@environment@workflow)."""

    name: str
    deployment: str
    workflow: str
    created: float


@dataclass(frozen=True)
class UserKey:
    """A user's SSH key: an orch credential (private key encrypted at rest, or in Vault) that is theirs."""

    id: str
    user: str
    credential: str
    created: float


@dataclass(frozen=True)
class UserExecution:
    """An execution started through the service: whose it is, of which exposed workflow, with which key."""

    execution_id: str
    user: str
    exposed: str
    key_id: str | None
    created: float


class Store(Protocol):
    # deployments
    def create_or_update_deployment(self, name: str, topology_path: str, template_file: str,
                                    inputs: dict[str, Any], status: str) -> None: ...
    def set_deployment_status(self, name: str, status: str) -> None: ...
    def deployment(self, name: str) -> Deployment | None: ...
    def deployments(self) -> list[Deployment]: ...
    def delete_deployment(self, name: str) -> None: ...

    # locks: one command at a time per deployment, across processes and within one
    def acquire(self, deployment: str, command: str) -> str: ...
    def lock_execution(self, deployment: str, owner: str, execution_id: str) -> None: ...
    def refuse_if_busy(self, deployment: str) -> None: ...
    def lock(self, deployment: str) -> Lock | None: ...
    def lock_is_live(self, deployment: str) -> bool: ...
    def release(self, deployment: str, owner: str) -> None: ...

    # instances and attributes
    def set_state(self, deployment: str, node: str, state: str) -> None: ...
    def states(self, deployment: str) -> dict[str, str]: ...
    def set_attributes(self, deployment: str, node: str, values: dict[str, Any]) -> None: ...
    def attribute(self, deployment: str, node: str, name: str) -> Any: ...
    def attributes(self, deployment: str) -> dict[str, dict[str, Any]]: ...

    # executions and their steps
    def start_execution(self, execution_id: str, deployment: str, workflow: str, inputs: dict[str, Any]) -> None: ...
    def reopen_execution(self, execution_id: str) -> None: ...
    def queue_execution(self, execution_id: str, deployment: str, workflow: str, inputs: dict[str, Any], *,
                        owner: UserExecution | None = None) -> None: ...
    def queued_executions(self) -> list[Execution]: ...
    def claim_queued(self, execution_id: str) -> bool: ...
    def end_queued(self, execution_id: str, status: str, error: str, event: tuple[str, str]) -> bool: ...
    def end_execution(self, execution_id: str, status: str, error: str | None = None, *,
                      outputs: dict[str, Any] | None = None, deployment_status: str | None = None,
                      event: tuple[str, str] | None = None) -> None: ...
    def request_cancel(self, execution_id: str) -> None: ...
    def cancel_requested(self, execution_id: str) -> bool: ...
    def execution(self, execution_id: str) -> Execution | None: ...
    def executions(self, deployment: str) -> list[Execution]: ...
    def step_statuses(self, execution_id: str) -> dict[str, str]: ...
    def set_step_status(self, execution_id: str, step_id: str, status: str) -> None: ...

    # operation runs
    def operation_started(self, execution_id: str, deployment: str, step_id: str, node: str, operation: str,
                          host: str | None, running_state: str | None) -> int: ...
    def operation_done(self, run_id: int, execution_id: str, deployment: str, step_id: str, node: str,
                       outputs: dict[str, Any], attributes: dict[str, Any], state: str | None) -> None: ...
    def operation_failed(self, run_id: int, execution_id: str, step_id: str, error: str,
                         outputs: dict[str, Any] | None = None) -> None: ...
    def interrupted_runs_to_failed(self, execution_id: str) -> int: ...
    def operation_output(self, deployment: str, node: str, operation: str, output: str) -> Any: ...
    def operation_runs(self, deployment: str, execution_id: str | None = None) -> list[OperationRun]: ...

    # events
    def add_event(self, deployment: str, execution_id: str | None, kind: str, message: str,
                  node: str | None = None, operation: str | None = None,
                  data: dict[str, Any] | None = None) -> None: ...
    def events(self, deployment: str, execution_id: str | None = None, after_id: int = 0) -> list[Event]: ...

    # the service: users, exposed workflows, what belongs to whom
    def add_user(self, name: str, token_hash: str, admin: bool) -> None: ...
    def user_by_token_hash(self, token_hash: str) -> User | None: ...
    def users(self) -> list[User]: ...
    def delete_user(self, name: str) -> None: ...
    def expose(self, name: str, deployment: str, workflow: str) -> None: ...
    def unexpose(self, name: str) -> None: ...
    def exposed(self) -> list[Exposed]: ...
    def add_user_key(self, key_id: str, user: str, credential: str) -> None: ...
    def user_keys(self, user: str) -> list[UserKey]: ...
    def delete_user_key(self, key_id: str) -> None: ...
    def add_user_execution(self, execution_id: str, user: str, exposed: str, key_id: str | None) -> None: ...
    def user_executions(self, user: str | None = None) -> list[UserExecution]: ...
    def user_execution(self, execution_id: str) -> UserExecution | None: ...

    def close(self) -> None: ...
