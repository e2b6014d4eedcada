"""Deploy (anew, again, or resumed) and undeploy: the install and uninstall workflows of a topology."""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orchestrator import failpoints
from orchestrator.api.core import INSTALL, UNINSTALL, Core
from orchestrator.api.records import DeployStart, Outcome, Result
from orchestrator.credentials.sealed import seal
from orchestrator.engine.scheduler import Reporter
from orchestrator.home import deployment_name_problem
from orchestrator.model import Step, UsageError
from orchestrator.plan.lifecycle import install_plan, uninstall_plan
from orchestrator.store.base import Deployment, DeploymentStatus, ExecutionStatus, StepStatus


def new_execution_id() -> str:
    return secrets.token_hex(4)


def _refuse_resume_of_undeploy(deployment: Deployment) -> None:
    if deployment.status in (DeploymentStatus.UNDEPLOYING, DeploymentStatus.UNDEPLOY_FAILED):
        raise UsageError(f"deployment '{deployment.name}' is {deployment.status}: finish it with "
                         f"'orch undeploy {deployment.name}', or deploy it again with 'orch deploy TOPOLOGY -n "
                         f"{deployment.name}'")


class Deploying(Core):
    def deploy(self, name: str, path: str | None, inputs: Mapping[str, Any], *, resume: bool = False,
               reporter: Reporter | None = None, cancel: threading.Event | None = None,
               allow_remote_imports: bool = False,
               on_start: Callable[[DeployStart], None] | None = None) -> Result:
        """Deploy anew, deploy again over an existing deployment (every operation runs again: playbooks
        are idempotent), or resume one (what completed is kept). on_start hears which, once the
        topology has loaded and the deployment's lock is held."""
        given = dict(inputs)
        problem = deployment_name_problem(name)
        if problem:
            raise UsageError(problem)
        with self._executor() as executor:  # first: Ansible warms up while the topology loads
            existing = self.store.deployment(name)
            # a command at work explains the deployment's status better than the status itself
            self.store.refuse_if_busy(name)
            if resume:
                if existing is None:
                    raise UsageError(f"no deployment named '{name}' to resume")
                _refuse_resume_of_undeploy(existing)
                # the inputs it was deployed with, and what is given now on top (to mend a wrong value)
                path, inputs = existing.topology_path, {**self._unsealed(existing.inputs), **inputs}
            if path is None:
                raise UsageError("deploy needs a topology file (or --resume NAME)")
            topology = self._load_for_deployment(name, path, inputs, allow_remote_imports)
            owner = self.store.acquire(name, "deploy")
            try:
                failpoints.reached("deploy-locked")
                existing = self.store.deployment(name)  # again, under the lock
                workflows = tuple(topology.workflows)
                if resume and existing is not None:
                    _refuse_resume_of_undeploy(existing)
                    finished = self._finished_install(name)
                    if finished is not None:
                        changed = sorted(k for k, v in given.items() if self._unsealed(existing.inputs).get(k) != v)
                        if changed:
                            # new values would be silently ignored: nothing runs on a resume of a finished deploy
                            raise UsageError(f"{name} is deployed: nothing to resume, so the values given for "
                                             f"{', '.join(changed)} would not be used; to deploy with them: "
                                             f"orch deploy TOPOLOGY -n {name} (every operation runs again)")
                        if existing.status != DeploymentStatus.DEPLOYED:
                            self.store.set_deployment_status(name, DeploymentStatus.DEPLOYED)
                        if on_start:
                            on_start(DeployStart(name, "nothing_to_resume", existing.status, 0, workflows, finished))
                        return Result(name, finished, Outcome(ok=True), nothing_to_do=True)
                self.store.create_or_update_deployment(name, str(Path(path).resolve()), topology.template_file,
                                                       seal(self.home, inputs), DeploymentStatus.DEPLOYING)
                execution_id, done = self._execution_to_continue(name, INSTALL) if resume else (None, set())
                if execution_id is None:
                    execution_id = new_execution_id()
                    self.store.start_execution(execution_id, name, INSTALL, {})
                self.store.lock_execution(name, owner, execution_id)
                mode = "resume" if resume else ("again" if existing is not None else "new")
                if on_start:
                    on_start(DeployStart(name, mode, existing.status if existing else None, len(done), workflows,
                                         execution_id))
                self.store.add_event(name, execution_id, "deployment", f"deploy started (execution {execution_id})")
                outcome = Outcome.of(self._scheduler(name, topology, execution_id, executor, reporter, cancel).run(
                    install_plan(topology), done))
                status = (DeploymentStatus.DEPLOYED if outcome.ok else
                          DeploymentStatus.CANCELLED if outcome.cancelled else DeploymentStatus.FAILED)
                self._finish(execution_id, outcome, status)
                failpoints.reached("deploy-finished")
                return Result(name, execution_id, outcome)
            finally:
                self.store.release(name, owner)

    def _finished_install(self, name: str) -> str | None:
        """The id of the deployment's install execution when its last one succeeded (nothing to resume)."""
        installs = [e for e in self.store.executions(name) if e.workflow == INSTALL]
        return installs[-1].id if installs and installs[-1].status == ExecutionStatus.DONE else None

    def undeploy(self, name: str, *, reporter: Reporter | None = None, cancel: threading.Event | None = None,
                 on_start: Callable[[str], None] | None = None) -> Result:
        with self._executor() as executor:
            existing = self._existing(name)
            topology = self._stored_topology(existing)
            owner = self.store.acquire(name, "undeploy")
            try:
                self.store.set_deployment_status(name, DeploymentStatus.UNDEPLOYING)
                execution_id = new_execution_id()
                self.store.start_execution(execution_id, name, UNINSTALL, {})
                self.store.lock_execution(name, owner, execution_id)
                if on_start:
                    on_start(execution_id)
                states = self.store.states(name)
                never_created = {n for n in topology.nodes if states.get(n, "initial") in ("initial", "deleted")}

                def skip(step: Step) -> bool:
                    return step.node in never_created

                outcome = Outcome.of(self._scheduler(name, topology, execution_id, executor, reporter, cancel,
                                                     skip).run(uninstall_plan(topology)))
                if outcome.ok:
                    self.store.end_execution(execution_id, ExecutionStatus.DONE)
                    self.store.delete_deployment(name)
                    shutil.rmtree(self._deployment_dir(name), ignore_errors=True)
                else:
                    self._finish(execution_id, outcome, DeploymentStatus.UNDEPLOY_FAILED)
                return Result(name, execution_id, outcome)
            finally:
                self.store.release(name, owner)

    def _execution_to_continue(self, name: str, workflow: str) -> tuple[str | None, set[str]]:
        executions = [e for e in self.store.executions(name) if e.workflow == workflow]
        if not executions or executions[-1].status == ExecutionStatus.DONE:
            return None, set()
        execution = executions[-1]
        self.store.interrupted_runs_to_failed(execution.id)
        self.store.reopen_execution(execution.id)
        done = {s for s, status in self.store.step_statuses(execution.id).items()
                if status in (StepStatus.DONE, StepStatus.SKIPPED)}
        return execution.id, done

    def _finish(self, execution_id: str, outcome: Outcome, status: str) -> None:
        error = "; ".join(str(f) for f in outcome.failures) or None
        self.store.end_execution(execution_id, ExecutionStatus.DONE if outcome.ok else
                                 (ExecutionStatus.CANCELLED if outcome.cancelled else ExecutionStatus.FAILED), error,
                                 deployment_status=status,
                                 event=("deployment", f"{status}" + (f": {error}" if error else "")))
