"""Run a deployed topology's workflows (stage in, the job, stage out), resume them, cancel them by id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from orchestrator import failpoints
from orchestrator.api.core import INSTALL, UNINSTALL, Core
from orchestrator.api.deploying import new_execution_id
from orchestrator.api.records import Outcome, Result
from orchestrator.credentials.sealed import seal
from orchestrator.engine import jobs
from orchestrator.engine.operations import LoginAs
from orchestrator.engine.scheduler import Reporter
from orchestrator.model import UsageError
from orchestrator.plan.workflows import WorkflowError, default_workflow, workflow_plan
from orchestrator.store.base import Deployment, DeploymentStatus, Execution, ExecutionStatus, UserExecution


def _require_deployed(deployment: Deployment) -> None:
    if deployment.status != DeploymentStatus.DEPLOYED:
        raise UsageError(f"deployment '{deployment.name}' is {deployment.status}, not deployed: "
                         "run needs a deployed topology")


class Running(Core):
    def run(self, name: str, workflow: str | None, inputs: Mapping[str, Any], *, resume: str | None = None,
            reporter: Reporter | None = None, cancel: threading.Event | None = None,
            on_start: Callable[[str], None] | None = None, login: LoginAs | None = None,
            queued: str | None = None) -> Result:
        """Run a workflow of a deployed topology (its one custom workflow by default). login: reach every
        host as this orch credential (a scientist's own key) instead of the topology's credentials.
        queued: run this queued execution (queue_run), with its workflow and inputs."""
        with self._executor() as executor:  # first: Ansible warms up while the topology loads
            deployment = self._existing(name)
            # a deploy or undeploy at work explains the status better than the status itself
            self.store.refuse_if_busy(name)
            _require_deployed(deployment)
            topology = self._stored_topology(deployment)
            if resume:
                previous = self.store.execution(resume)
                if previous is None or previous.deployment != name:
                    raise UsageError(f"no execution '{resume}' of deployment '{name}'")
                if previous.status == ExecutionStatus.DONE:
                    # as a resume of a finished deploy: nothing runs, and that is a success (orch killed
                    # between recording the end and exiting leaves exactly this to a script that resumes)
                    return Result(name, resume, Outcome(), nothing_to_do=True)
                workflow = previous.workflow
                inputs = {**self._unsealed(previous.inputs), **inputs}
            elif queued:
                waiting = self.store.execution(queued)
                if waiting is None or waiting.deployment != name or waiting.status != ExecutionStatus.QUEUED:
                    raise UsageError(f"no queued execution '{queued}' of deployment '{name}'")
                workflow, inputs = waiting.workflow, self._unsealed(waiting.inputs)
            try:
                workflow = workflow or default_workflow(topology)
                graph = workflow_plan(topology, workflow)
            except WorkflowError as exc:
                raise UsageError(str(exc)) from None
            workflow_inputs = self._workflow_inputs(topology, workflow, inputs)
            owner = self.store.acquire(name, f"run {workflow}")
            try:
                _require_deployed(self._existing(name))  # again, under the lock: it may have changed meanwhile
                done: set[str] = set()
                if resume:
                    execution_id = resume
                    self.store.interrupted_runs_to_failed(execution_id)
                    self.store.reopen_execution(execution_id)
                    done = jobs.steps_kept_on_resume(graph, self.store.step_statuses(execution_id))
                elif queued:
                    if not self.store.claim_queued(queued):
                        raise UsageError(f"execution '{queued}' is no longer queued")
                    execution_id = queued
                else:
                    execution_id = new_execution_id()
                    self.store.start_execution(execution_id, name, workflow, seal(self.home, inputs))
                self.store.lock_execution(name, owner, execution_id)
                if on_start:
                    on_start(execution_id)
                self.store.add_event(name, execution_id, "execution", f"workflow {workflow} started")
                outcome = Outcome.of(self._scheduler(name, topology, execution_id, executor, reporter, cancel,
                                                     inputs=workflow_inputs, login=login).run(graph, done))
                error = "; ".join(str(f) for f in outcome.failures) or None
                status = (ExecutionStatus.DONE if outcome.ok else
                          ExecutionStatus.CANCELLED if outcome.cancelled else ExecutionStatus.FAILED)
                # an unfinished execution has no outputs: they would name results that were never written
                outputs = self._evaluate_outputs(name, topology, workflow_inputs) if outcome.ok else None
                self.store.end_execution(execution_id, status, error, outputs=outputs,
                                         event=("execution", f"workflow {workflow} {status}"
                                                + (f": {error}" if error else "")))
                failpoints.reached("run-finished")
                return Result(name, execution_id, outcome)
            finally:
                self.store.release(name, owner)

    def queue_run(self, name: str, workflow: str | None, inputs: Mapping[str, Any], *,
                  owner: UserExecution | None = None) -> str:
        """An execution that waits until the deployment is free, then runs (run(queued=...)); its id.
        Its workflow and inputs are checked now: a queued execution never fails later for bad input.
        owner: the service user it belongs to (recorded with it, in one step), with its id."""
        deployment = self._existing(name)
        _require_deployed(deployment)
        topology = self._stored_topology(deployment)
        try:
            workflow = workflow or default_workflow(topology)
            workflow_plan(topology, workflow)
        except WorkflowError as exc:
            raise UsageError(str(exc)) from None
        self._workflow_inputs(topology, workflow, inputs)
        execution_id = owner.execution_id if owner else new_execution_id()
        self.store.queue_execution(execution_id, name, workflow, seal(self.home, dict(inputs)), owner=owner)
        self.store.add_event(name, execution_id, "execution", f"workflow {workflow} queued: the deployment is busy")
        return execution_id

    def queued_runs(self) -> list[Execution]:
        """The executions waiting for their deployment, oldest first."""
        return self.store.queued_executions()

    def refuse_queued(self, execution_id: str, reason: str) -> bool:
        """A queued execution that cannot run when its turn comes (its deployment gone, its key deleted):
        failed, with the reason. False if it had started meanwhile."""
        return self.store.end_queued(execution_id, ExecutionStatus.FAILED, reason,
                                     ("execution", f"not started: {reason}"))

    def cancel(self, name: str, execution_id: str, wait: float = 120.0) -> str:
        """Cancel a running execution (a run, a deploy or an undeploy) by id, from this process or any
        other: the one running it sees the request, stops starting operations, cancels its jobs. Waits
        up to `wait` seconds for it to end; returns its status then ("cancelling" if still going)."""
        execution = self.store.execution(execution_id)
        if execution is None or execution.deployment != name:
            raise UsageError(f"no execution '{execution_id}' of deployment '{name}'")
        if execution.status == ExecutionStatus.QUEUED:
            if self.store.end_queued(execution_id, ExecutionStatus.CANCELLED, "cancelled before it started",
                                     ("execution", "cancelled before it started")):
                return ExecutionStatus.CANCELLED
            execution = self.store.execution(execution_id) or execution  # it started meanwhile
        if execution.status != ExecutionStatus.RUNNING:
            raise UsageError(f"execution '{execution_id}' is {execution.status}; only a running one can be cancelled")
        self.store.request_cancel(execution_id)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            current = self.store.execution(execution_id)
            if current and current.status != ExecutionStatus.RUNNING:
                return current.status
            if not self._running_live(name, execution_id):
                break  # nobody is running it: its process died; settle it here
            time.sleep(0.2)
        else:
            return "cancelling"
        # a dead deploy's deployment is cancelled with it (resumable), a dead undeploy's is not yet undeployed
        settled = {INSTALL: DeploymentStatus.CANCELLED, UNINSTALL: DeploymentStatus.UNDEPLOY_FAILED}
        self.store.end_execution(execution_id, ExecutionStatus.CANCELLED, "cancelled; its process had ended",
                                 deployment_status=settled.get(execution.workflow),
                                 event=("execution", f"{execution.workflow} cancelled; its process had ended"))
        return ExecutionStatus.CANCELLED

    # the name the CLI used before `cancel` covered deploys too
    cancel_execution = cancel

    def _running_live(self, name: str, execution_id: str) -> bool:
        """A live owner holds the deployment's lock for this execution (or for one it did not name yet)."""
        lock = self.store.lock(name)
        return lock is not None and lock.live and lock.execution_id in (None, execution_id)
