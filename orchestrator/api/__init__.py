"""The one door into orch: the CLI, the service and tests call this and nothing below it.

`Orchestrator` gathers the use cases, one module each: templates (validate, plan), deploying (deploy,
undeploy), running (run, cancel), reading (status, outputs, executions, events, follow), background
(start_* : the id at once, the work in a thread), credentials, registry (workflows published in
folders or git repositories, deployed by name and version), and service (users, exposed workflows,
the users' own keys and executions, for `orch serve`). Everything returned is a plain frozen
record (api/records.py). Loading happens before anything is written: bad input leaves the store untouched.
"""

from __future__ import annotations

from orchestrator.api.background import Work
from orchestrator.api.catalogue import Catalogued
from orchestrator.api.core import PooledAnsibleExecutors
from orchestrator.api.deploying import Deploying, new_execution_id
from orchestrator.api.inputs import read_inputs
from orchestrator.api.records import (
    CreatedCredential,
    Credential,
    DeletedCredential,
    DeploymentStatus,
    DeploymentSummary,
    DeploymentView,
    DeployStart,
    Event,
    ExecutionStatus,
    ExecutionView,
    Failure,
    LastOperation,
    NodeView,
    Outcome,
    OutputsView,
    PlanView,
    Result,
    Validation,
)
from orchestrator.api.registry import Registering
from orchestrator.api.running import Running
from orchestrator.api.service import (
    ExposedWorkflow,
    InputSchema,
    KeyView,
    NotFound,
    Refused,
    Service,
    StepState,
    UserExecutionView,
)
from orchestrator.api.templates import Templates
from orchestrator.credentials import CredentialError, UnknownCredential
from orchestrator.engine.operations import LoginAs
from orchestrator.home import default_home
from orchestrator.model import LoadError, Problem, Step, UsageError
from orchestrator.store.base import DeploymentBusy, StoreError, User


class Orchestrator(Catalogued, Templates, Registering, Deploying, Running, Service):
    """orch's API on one home ($ORCH_HOME). One object per thread of work: its store connection is
    shared by its own threads only (start_* gives each background work its own)."""


__all__ = [
    "CreatedCredential",
    "Credential",
    "CredentialError",
    "DeletedCredential",
    "DeployStart",
    "DeploymentBusy",
    "DeploymentStatus",
    "DeploymentSummary",
    "DeploymentView",
    "Event",
    "ExecutionStatus",
    "ExecutionView",
    "ExposedWorkflow",
    "Failure",
    "InputSchema",
    "KeyView",
    "LastOperation",
    "LoadError",
    "LoginAs",
    "NodeView",
    "NotFound",
    "Orchestrator",
    "Outcome",
    "OutputsView",
    "PlanView",
    "PooledAnsibleExecutors",
    "Problem",
    "Refused",
    "Result",
    "Step",
    "StepState",
    "StoreError",
    "UnknownCredential",
    "UsageError",
    "User",
    "UserExecutionView",
    "Validation",
    "Work",
    "default_home",
    "new_execution_id",
    "read_inputs",
]
