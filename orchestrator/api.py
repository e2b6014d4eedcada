"""The Python API that the CLI (and any other front end) calls: deploy, undeploy, status, outputs.

Loading happens before anything is written: bad input leaves the store untouched.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping


from orchestrator import failpoints
from orchestrator.credentials import CredentialError, CredentialStore
from orchestrator.credentials.sealed import seal, shown, unseal
from orchestrator.credentials.reader import secret_reader
from orchestrator.engine.operations import Evaluation
from orchestrator.engine.scheduler import Outcome, Reporter, RetryPolicy, Scheduler
from orchestrator.executors.ansible import AnsibleExecutor
from orchestrator.model import LoadError, Problem, Step, Topology, UsageError
from orchestrator.plan.lifecycle import install_plan, uninstall_plan
from orchestrator.plan.workflows import WorkflowError, default_workflow, workflow_plan
from orchestrator.store.sqlite import Deployment, Store, StoreError
from orchestrator.tosca import csar
from orchestrator.engine.evaluate import evaluate
from orchestrator.functions import FunctionError
from orchestrator.tosca.inputs import resolve_input_values
from orchestrator.tosca.loader import load
from orchestrator.tosca.yamlio import read_yaml

INSTALL, UNINSTALL = "install", "uninstall"


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


def read_inputs(files: list[str], assignments: list[str]) -> dict[str, Any]:
    """Inputs from -i files (merged in order) and --set key=value (last wins)."""
    values: dict[str, Any] = {}
    for file in files:
        document, problems = read_yaml(file, "inputs file")
        if problems:
            raise LoadError(problems)
        if document is None:
            continue
        if not isinstance(document, dict):
            raise LoadError([Problem(file, "", "an inputs file must be a YAML mapping of input names to values")])
        values.update(document)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise LoadError([Problem("--set", assignment, "expected key=value")])
        values[key.strip()] = value
    return values


def new_execution_id() -> str:
    return secrets.token_hex(4)


def _refuse_resume_of_undeploy(deployment: Deployment) -> None:
    if deployment.status in ("undeploying", "undeploy_failed"):
        raise UsageError(f"deployment '{deployment.name}' is {deployment.status}: finish it with "
                         f"'orch undeploy {deployment.name}', or deploy it again with 'orch deploy TOPOLOGY -n "
                         f"{deployment.name}'")


def _resume_command(name: str, workflow: str, execution_id: str) -> str:
    if workflow == INSTALL:
        return f"orch deploy --resume {name}"
    if workflow == UNINSTALL:
        return f"orch undeploy {name}"
    return f"orch run {name} --resume {execution_id}"


def _require_deployed(deployment: Deployment) -> None:
    if deployment.status != "deployed":
        raise UsageError(f"deployment '{deployment.name}' is {deployment.status}, not deployed: "
                         "run needs a deployed topology")


class Orchestrator:
    """executor: an AnsibleExecutor made (and closed) by the caller, e.g. one already warming up;
    otherwise each command makes its own."""

    def __init__(self, home: Path, workers: int = 4, executor: AnsibleExecutor | None = None):
        self.home = home
        self.store = Store(home)
        self.workers = workers
        self.given_executor = executor

    def close(self) -> None:
        self.store.close()

    # -- deploy ----------------------------------------------------------------------------------

    def deploy(self, name: str, path: str | None, inputs: Mapping[str, Any], *, resume: bool = False,
               reporter: Reporter | None = None, cancel: threading.Event | None = None,
               allow_remote_imports: bool = False,
               on_start: Callable[[DeployStart], None] | None = None) -> Result:
        """Deploy anew, deploy again over an existing deployment (every operation runs again: playbooks
        are idempotent), or resume one (what completed is kept). on_start hears which, once the
        topology has loaded and the deployment's lock is held."""
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
        self.store.acquire(name, "deploy")
        try:
            failpoints.reached("deploy-locked")
            existing = self.store.deployment(name)  # again, under the lock
            if resume and existing is not None:
                _refuse_resume_of_undeploy(existing)
                finished = self._finished_install(name)
                if finished is not None:
                    if existing.status != "deployed":
                        self.store.set_deployment_status(name, "deployed")
                    if on_start:
                        on_start(DeployStart(name, "nothing_to_resume", existing.status, 0,
                                             tuple(topology.workflows)))
                    return Result(name, finished, Outcome(ok=True), nothing_to_do=True)
            self.store.create_or_update_deployment(name, str(Path(path).resolve()), topology.template_file,
                                                   seal(self.home, inputs), "deploying")
            execution_id, done = self._execution_to_continue(name, INSTALL) if resume else (None, set())
            if execution_id is None:
                execution_id = new_execution_id()
                self.store.start_execution(execution_id, name, INSTALL, {})
            mode = "resume" if resume else ("again" if existing is not None else "new")
            if on_start:
                on_start(DeployStart(name, mode, existing.status if existing else None, len(done),
                                     tuple(topology.workflows)))
            self.store.add_event(name, execution_id, "deployment", f"deploy started (execution {execution_id})")
            with self._executor() as executor:
                outcome = self._scheduler(name, topology, execution_id, executor, reporter, cancel).run(
                    install_plan(topology), done)
            status = "deployed" if outcome.ok else ("cancelled" if outcome.cancelled else "failed")
            self._finish(name, execution_id, outcome, status)
            failpoints.reached("deploy-finished")
            return Result(name, execution_id, outcome)
        finally:
            self.store.release(name)

    def _finished_install(self, name: str) -> str | None:
        """The id of the deployment's install execution when its last one succeeded (nothing to resume)."""
        installs = [e for e in self.store.executions(name) if e.workflow == INSTALL]
        return installs[-1].id if installs and installs[-1].status == "done" else None

    def undeploy(self, name: str, *, reporter: Reporter | None = None,
                 cancel: threading.Event | None = None) -> Result:
        existing = self.store.deployment(name)
        if existing is None:
            raise UsageError(f"no deployment named '{name}'")
        topology = self._load_for_deployment(name, existing.topology_path, self._unsealed(existing.inputs), False,
                                             reuse=True)
        self.store.acquire(name, "undeploy")
        try:
            self.store.set_deployment_status(name, "undeploying")
            execution_id = new_execution_id()
            self.store.start_execution(execution_id, name, UNINSTALL, {})
            states = self.store.states(name)
            never_created = {n for n in topology.nodes if states.get(n, "initial") in ("initial", "deleted")}

            def skip(step: Step) -> bool:
                return step.node in never_created

            with self._executor() as executor:
                outcome = self._scheduler(name, topology, execution_id, executor, reporter, cancel, skip).run(
                    uninstall_plan(topology))
            if outcome.ok:
                self.store.end_execution(execution_id, "done")
                self.store.delete_deployment(name)
                shutil.rmtree(self._deployment_dir(name), ignore_errors=True)
            else:
                self._finish(name, execution_id, outcome, "undeploy_failed")
            return Result(name, execution_id, outcome)
        finally:
            self.store.release(name)

    # -- run: imperative workflows ---------------------------------------------------------------

    def run(self, name: str, workflow: str | None, inputs: Mapping[str, Any], *, resume: str | None = None,
            reporter: Reporter | None = None, cancel: threading.Event | None = None,
            on_start: Callable[[str], None] | None = None) -> Result:
        """Run a workflow of a deployed topology (its one custom workflow by default)."""
        deployment = self._existing(name)
        # a deploy or undeploy at work explains the status better than the status itself
        self.store.refuse_if_busy(name)
        _require_deployed(deployment)
        topology = self._load_for_deployment(name, deployment.topology_path, self._unsealed(deployment.inputs),
                                             False, reuse=True)
        done: set[str] = set()
        if resume:
            previous = self.store.execution(resume)
            if previous is None or previous.deployment != name:
                raise UsageError(f"no execution '{resume}' of deployment '{name}'")
            if previous.status == "done":
                raise UsageError(f"execution '{resume}' succeeded; nothing to resume")
            workflow = previous.workflow
            inputs = {**self._unsealed(previous.inputs), **inputs}
        try:
            workflow = workflow or default_workflow(topology)
            graph = workflow_plan(topology, workflow)
        except WorkflowError as exc:
            raise UsageError(str(exc)) from None
        workflow_inputs = self._workflow_inputs(topology, workflow, inputs)
        self.store.acquire(name, f"run {workflow}")
        try:
            _require_deployed(self._existing(name))  # again, under the lock: it may have changed meanwhile
            if resume:
                execution_id = resume
                self.store.interrupted_runs_to_failed(execution_id)
                self.store.reopen_execution(execution_id)
                done = self._steps_kept_on_resume(graph, execution_id)
            else:
                execution_id = new_execution_id()
                self.store.start_execution(execution_id, name, workflow, seal(self.home, inputs))
            if on_start:
                on_start(execution_id)
            self.store.add_event(name, execution_id, "execution", f"workflow {workflow} started")
            with self._executor() as executor:
                scheduler = self._scheduler(name, topology, execution_id, executor, reporter, cancel,
                                            inputs=workflow_inputs)
                scheduler.should_cancel = lambda: self.store.cancel_requested(execution_id)
                outcome = scheduler.run(graph, done)
            error = "; ".join(str(f) for f in outcome.failures) or None
            status = "done" if outcome.ok else ("cancelled" if outcome.cancelled else "failed")
            # an unfinished execution has no outputs: they would name results that were never written
            outputs = self._evaluate_outputs(name, topology, workflow_inputs) if outcome.ok else None
            self.store.end_execution(execution_id, status, error, outputs=outputs,
                                     event=("execution", f"workflow {workflow} {status}"
                                            + (f": {error}" if error else "")))
            failpoints.reached("run-finished")
            return Result(name, execution_id, outcome)
        finally:
            self.store.release(name)

    def _unsealed(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return unseal(self.home, stored)
        except CredentialError as exc:
            raise UsageError(str(exc)) from None

    def _steps_kept_on_resume(self, graph, execution_id: str) -> set[str]:
        """Steps that succeeded are kept, except the submit of a job that failed or was cancelled:
        watching it again would only see it end the same way, so its workflow step submits it anew.
        A watch that was merely interrupted (orch died) watches the job it had submitted again."""
        statuses = self.store.step_statuses(execution_id)
        done = {s for s, st in statuses.items() if st in ("done", "skipped")}
        for step_id, status in statuses.items():
            if status in ("failed", "cancelled") and step_id in graph \
                    and graph.nodes[step_id]["step"].operation == "Runnable.run":
                failed = graph.nodes[step_id]["step"]
                done -= {n for n in graph.nodes if graph.nodes[n]["step"].node == failed.node
                         and graph.nodes[n]["step"].workflow_step == failed.workflow_step
                         and graph.nodes[n]["step"].operation == "Runnable.submit"}
        return done

    def cancel_execution(self, name: str, execution_id: str, wait: float = 120.0) -> str:
        """Ask the process running the execution to cancel it, and wait for it to end."""
        execution = self.store.execution(execution_id)
        if execution is None or execution.deployment != name:
            raise UsageError(f"no execution '{execution_id}' of deployment '{name}'")
        if execution.status != "running":
            raise UsageError(f"execution '{execution_id}' is {execution.status}; only a running one can be cancelled")
        self.store.request_cancel(execution_id)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            current = self.store.execution(execution_id)
            if current and current.status != "running":
                return current.status
            if not self.store.lock_is_live(name):
                break  # nobody is running it: the process died; settle it here
            time.sleep(0.2)
        else:
            return "cancelling"
        self.store.end_execution(execution_id, "cancelled", "cancelled; its process had ended")
        return "cancelled"

    def executions(self, name: str) -> list[dict[str, Any]]:
        """Each execution with its status; one still `running` whose process is gone is `interrupted`,
        with the command that resumes it."""
        self._existing(name)
        rows = []
        for e in self.store.executions(name):
            status, resume = e.status, None
            if status == "running" and self._interrupted(name, e.id):
                status, resume = "interrupted", _resume_command(name, e.workflow, e.id)
            rows.append({"id": e.id, "workflow": e.workflow, "status": status, "started": e.started,
                         "ended": e.ended, "inputs": shown(e.inputs), "outputs": e.outputs, "error": e.error,
                         "resume": resume})
        return rows

    def _interrupted(self, name: str, execution_id: str) -> bool:
        """Running in the store, yet no live process holds the deployment's lock: its orch died.
        (The execution is read again after the lock: it may have ended while we looked.)"""
        if self.store.lock_is_live(name):
            return False
        current = self.store.execution(execution_id)
        return current is not None and current.status == "running"

    def execution(self, name: str, execution_id: str) -> dict[str, Any]:
        for row in self.executions(name):
            if row["id"] == execution_id:
                return row
        raise UsageError(f"no execution '{execution_id}' of deployment '{name}'")

    def events(self, name: str, execution_id: str | None = None, after_id: int = 0):
        self._existing(name)
        if execution_id is not None:
            self.execution(name, execution_id)  # an unknown id is an error, not an empty log
        return self.store.events(name, execution_id, after_id)

    def latest_execution(self, name: str) -> str:
        executions = self.store.executions(self._existing(name).name)
        if not executions:
            raise UsageError(f"deployment '{name}' has no execution to follow")
        return executions[-1].id

    def execution_ended(self, name: str, execution_id: str) -> bool:
        """True once the execution is over: ended, or interrupted (its process is gone)."""
        return self.execution(name, execution_id)["status"] != "running"

    def _workflow_inputs(self, topology: Topology, workflow: str, given: Mapping[str, Any]) -> dict[str, Any]:
        definitions = topology.workflows[workflow].inputs if workflow in topology.workflows else {}
        values, problems = resolve_input_values(definitions, given, topology.path,
                                                f"topology_template.workflows.{workflow}.inputs")
        if problems:
            raise LoadError(problems)
        return values

    def _evaluate_outputs(self, name: str, topology: Topology, inputs: Mapping[str, Any] | None = None) -> dict:
        ev = self._evaluation(name, topology, inputs)
        values: dict[str, Any] = {}
        for output, expression in topology.outputs.items():
            try:
                values[output] = evaluate(expression, ev.context(None))
            except FunctionError as exc:
                values[output] = f"<unavailable: {exc}>"
        return values

    # -- read ------------------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        deployment = self._existing(name)
        states = self.store.states(name)
        attributes = self.store.attributes(name)
        last: dict[str, Any] = {}
        for run in self.store.operation_runs(name):
            last[run.node] = {"operation": run.operation, "status": run.status, "host": run.host,
                              "error": run.error}
        nodes = sorted(set(states) | set(last))
        interrupted = deployment.status in ("deploying", "undeploying") and not self.store.lock_is_live(name)
        resume = None
        if interrupted:
            resume = f"orch deploy --resume {name}" if deployment.status == "deploying" else f"orch undeploy {name}"
        return {
            "name": name, "status": deployment.status, "interrupted": interrupted, "resume": resume,
            "topology": deployment.topology_path,
            "nodes": {n: {"state": states.get(n, "initial"), "host": (last.get(n) or {}).get("host"),
                          "last_operation": last.get(n), "attributes": attributes.get(n, {})} for n in nodes},
        }

    def outputs(self, name: str) -> dict[str, Any]:
        deployment = self._existing(name)
        topology = self._load_for_deployment(name, deployment.topology_path, self._unsealed(deployment.inputs),
                                             False, reuse=True)
        # after a run, outputs that read workflow inputs show the last successful run's values (defaults
        # included): an unfinished run's would name results that were never written
        executions = [e for e in self.store.executions(name)
                      if e.workflow not in (INSTALL, UNINSTALL) and e.status == "done"]
        latest_inputs = None
        if executions:
            try:
                latest_inputs = self._workflow_inputs(topology, executions[-1].workflow,
                                                      self._unsealed(executions[-1].inputs))
            except LoadError:
                latest_inputs = self._unsealed(executions[-1].inputs)
        return self._evaluate_outputs(name, topology, latest_inputs)

    def list(self) -> list[dict[str, Any]]:
        return [{"name": d.name, "status": d.status, "topology": d.topology_path, "updated": d.updated}
                for d in self.store.deployments()]

    # -- internals -------------------------------------------------------------------------------

    def _existing(self, name: str):
        deployment = self.store.deployment(name)
        if deployment is None:
            raise UsageError(f"no deployment named '{name}'")
        return deployment

    def _deployment_dir(self, name: str) -> Path:
        return self.home / "deployments" / name

    def _load_for_deployment(self, name: str, path: str, inputs: Mapping[str, Any], allow_remote: bool,
                             reuse: bool = False) -> Topology:
        """A CSAR is unpacked into the deployment's own folder at deploy time and read from there after."""
        if csar.is_csar(path):
            stored = self.store.deployment(name)
            if reuse and stored is not None and Path(stored.template_file).is_file():
                return load(stored.template_file, inputs)
            return load(path, inputs, allow_remote_imports=allow_remote,
                        unpack_dir=self._deployment_dir(name) / "csar")
        return load(path, inputs, allow_remote_imports=allow_remote)

    def _evaluation(self, name: str, topology: Topology, inputs: Mapping[str, Any] | None = None) -> Evaluation:
        effective = dict(topology.input_values)
        effective.update(inputs or {})
        deployment_dir = self._deployment_dir(name)
        deployment_dir.mkdir(parents=True, exist_ok=True)
        return Evaluation(topology, name, effective,
                          read_attribute=lambda node, attr: self.store.attribute(name, node, attr),
                          read_operation_output=lambda node, op, out: self.store.operation_output(name, node, op, out),
                          read_secret=secret_reader(CredentialStore(self.home)),
                          deployment_dir=str(deployment_dir))

    @contextlib.contextmanager
    def _executor(self) -> Iterator[AnsibleExecutor]:
        if self.given_executor is not None:
            yield self.given_executor
            return
        with AnsibleExecutor(self.home) as executor:
            yield executor

    def _scheduler(self, name: str, topology: Topology, execution_id: str, executor: AnsibleExecutor,
                   reporter: Reporter | None, cancel: threading.Event | None, skip=None,
                   inputs: Mapping[str, Any] | None = None) -> Scheduler:
        return Scheduler(self.store, executor, self._evaluation(name, topology, inputs),
                         execution_id, workers=self.workers, reporter=reporter, cancel=cancel,
                         retry_policy=retry_policy(topology), skip=skip)

    def _execution_to_continue(self, name: str, workflow: str) -> tuple[str | None, set[str]]:
        executions = [e for e in self.store.executions(name) if e.workflow == workflow]
        if not executions or executions[-1].status == "done":
            return None, set()
        execution = executions[-1]
        self.store.interrupted_runs_to_failed(execution.id)
        self.store.reopen_execution(execution.id)
        done = {s for s, status in self.store.step_statuses(execution.id).items() if status in ("done", "skipped")}
        return execution.id, done

    def _finish(self, name: str, execution_id: str, outcome: Outcome, status: str) -> None:
        error = "; ".join(str(f) for f in outcome.failures) or None
        self.store.end_execution(execution_id, "done" if outcome.ok else
                                 ("cancelled" if outcome.cancelled else "failed"), error,
                                 deployment_status=status,
                                 event=("deployment", f"{status}" + (f": {error}" if error else "")))


def retry_policy(topology: Topology) -> RetryPolicy:
    """Topology-wide retry settings from a policy of type orch.policies.Retry (properties override defaults)."""
    policy = RetryPolicy()
    for body in topology.policies.values():
        if isinstance(body, dict) and body.get("type") == "orch.policies.Retry":
            props = body.get("properties") or {}
            policy.unreachable_retries = int(props.get("unreachable_retries", policy.unreachable_retries))
            policy.failure_retries = int(props.get("failure_retries", policy.failure_retries))
            policy.delay = float(props.get("delay", policy.delay))
    return policy


__all__ = ["Orchestrator", "UsageError", "StoreError", "read_inputs", "Result", "DeployStart"]
