"""Reading a deployment: its status, outputs, executions and their events, followed as they come."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from orchestrator.api.core import INSTALL, UNINSTALL, Core, resume_command
from orchestrator.api.records import (
    DeploymentSummary,
    DeploymentView,
    Event,
    ExecutionView,
    LastOperation,
    NodeView,
    OutputsView,
)
from orchestrator.credentials.sealed import shown
from orchestrator.dls.client import AirflowError, Client, Service
from orchestrator.dls.dags._periodic import query
from orchestrator.model import LoadError, UsageError
from orchestrator.render import periodic_line
from orchestrator.store.base import DeploymentStatus, Execution, ExecutionStatus

FOLLOW_POLL = 0.3


class Reading(Core):
    def executions(self, name: str) -> list[ExecutionView]:
        """Each execution with its status; one still `running` whose process is gone is `interrupted`,
        with the command that resumes it."""
        self._existing(name)
        return [self._view(e) for e in self.store.executions(name)]

    def execution(self, name: str, execution_id: str) -> ExecutionView:
        execution = self.store.execution(execution_id)
        if execution is None or execution.deployment != name:
            raise UsageError(f"no execution '{execution_id}' of deployment '{name}'")
        return self._view(execution)

    def _view(self, e: Execution) -> ExecutionView:
        status, resume = e.status, None
        if status == ExecutionStatus.RUNNING and self._interrupted(e):
            status, resume = ExecutionStatus.INTERRUPTED, resume_command(e.deployment, e.workflow, e.id)
        return ExecutionView(e.id, e.workflow, str(status), e.started, e.ended, shown(e.inputs), e.outputs, e.error,
                             resume)

    def _interrupted(self, e: Execution) -> bool:
        """Running in the store, yet no live owner of the deployment's lock runs it: its orch died.
        (The execution is read again after the lock: it may have ended while we looked.)"""
        lock = self.store.lock(e.deployment)
        if lock is not None and lock.live and lock.execution_id in (None, e.id):
            return False
        current = self.store.execution(e.id)
        return current is not None and current.status == ExecutionStatus.RUNNING

    def events(self, name: str, execution_id: str | None = None, after_id: int = 0) -> list[Event]:
        self._existing(name)
        if execution_id is not None:
            self.execution(name, execution_id)  # an unknown id is an error, not an empty log
        return self.store.events(name, execution_id, after_id)

    def follow(self, name: str, execution_id: str, after_id: int = 0,
               poll: float = FOLLOW_POLL) -> Iterator[Event]:
        """The execution's events from `after_id` on, as they arrive, until it is over (ended, or
        interrupted). Any number of followers, in any process: each reads the store."""
        last = after_id
        while True:
            over = self.execution(name, execution_id).over  # read before the events: none is missed
            for event in self.store.events(name, execution_id, last):
                last = event.id
                yield event
            if over:
                return
            time.sleep(poll)

    def latest_execution(self, name: str) -> str:
        executions = self.store.executions(self._existing(name).name)
        if not executions:
            raise UsageError(f"deployment '{name}' has no execution to follow")
        return executions[-1].id

    def execution_ended(self, name: str, execution_id: str) -> bool:
        """True once the execution is over: ended, or interrupted (its process is gone)."""
        return self.execution(name, execution_id).over

    def status(self, name: str) -> DeploymentView:
        deployment = self._existing(name)
        states = self.store.states(name)
        attributes = self.store.attributes(name)
        last: dict[str, LastOperation] = {}
        for run in self.store.operation_runs(name):
            last[run.node] = LastOperation(run.operation, run.status, run.host, run.error)
        nodes = sorted(set(states) | set(last))
        interrupted = (deployment.status in (DeploymentStatus.DEPLOYING, DeploymentStatus.UNDEPLOYING)
                       and not self.store.lock_is_live(name))
        resume = None
        if interrupted:
            resume = (f"orch deploy --resume {name}" if deployment.status == DeploymentStatus.DEPLOYING
                      else f"orch undeploy {name}")
        return DeploymentView(
            name, str(deployment.status), interrupted, resume, deployment.topology_path,
            {n: NodeView(states.get(n, "initial"), last[n].host if n in last else None, last.get(n),
                         _with_periodic(attributes.get(n, {}))) for n in nodes})

    def outputs(self, name: str) -> dict:
        return self.outputs_view(name).values

    def outputs_view(self, name: str) -> OutputsView:
        """After a run, outputs that read workflow inputs show the last successful run's values (defaults
        included): an unfinished run's would name results that were never written."""
        deployment = self._existing(name)
        topology = self._stored_topology(deployment)
        runs = [e for e in self.store.executions(name) if e.workflow not in (INSTALL, UNINSTALL)]
        done = [e for e in runs if e.status == ExecutionStatus.DONE]
        latest_inputs = None
        if done:
            try:
                latest_inputs = self._workflow_inputs(topology, done[-1].workflow, self._unsealed(done[-1].inputs))
            except LoadError:
                latest_inputs = self._unsealed(done[-1].inputs)
        return OutputsView(self._evaluate_outputs(name, topology, latest_inputs),
                           self._view(runs[-1]) if runs else None, self._view(done[-1]) if done else None)

    def list(self) -> list[DeploymentSummary]:
        return [DeploymentSummary(d.name, str(d.status), d.topology_path, d.updated)
                for d in self.store.deployments()]


def _with_periodic(attributes: dict) -> dict:
    """A periodic transfer's node (attribute periodic_dag, set by playbooks/eflows/periodic_start.yaml) with its
    runs as the data logistics service has them now, as attribute `periodic`: last run, next run, failures."""
    dag, service = attributes.get("periodic_dag"), attributes.get("periodic_service")
    if not dag or not service:
        return attributes
    try:
        summary = query(Client(Service.from_file(Path(service)), timeout=10), dag)
    except (AirflowError, OSError, ValueError) as exc:
        summary = {"error": str(exc)}
    return {**attributes, "periodic": periodic_line(summary)}
