"""HPC Workflows as a Service, as use cases: users and their tokens, workflows a developer exposes, the
scientists' own SSH keys, and executions that belong to the one who started them.

Everything here is scoped by user: a user reaches only their own keys and executions (another user's id
is "not found", never "forbidden": ids are not confirmed to exist). Inputs from users are data: a path on
the orch server itself must lie under one of the configured data roots.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.api.background import Background, Work
from orchestrator.api.credentials import Credentials
from orchestrator.api.deploying import new_execution_id
from orchestrator.api.reading import Reading
from orchestrator.api.records import Event, ExecutionView
from orchestrator.credentials import CredentialError
from orchestrator.engine.operations import LoginAs
from orchestrator.functions import iter_functions
from orchestrator.model import InputDefinition, LoadError, Problem, UsageError
from orchestrator.store.base import DeploymentBusy, DeploymentStatus, Exposed, StoreError, User, UserExecution, UserKey

TOKEN_BYTES = 32
VERIFY_LOGIN = Path(__file__).with_name("playbooks") / "verify_login.yaml"


class NotFound(UsageError):
    """What a user asked for does not exist for them (it may be someone else's)."""


class Refused(UsageError):
    """A request the service will not carry out: bad inputs, a key that is not theirs, ..."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class InputSchema:
    name: str
    type: str
    required: bool
    default: Any
    has_default: bool
    description: str
    constraints: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ExposedWorkflow:
    name: str  # app@environment@workflow
    deployment: str
    workflow: str
    description: str
    inputs: tuple[InputSchema, ...]


@dataclass(frozen=True)
class Submitted:
    """An execution the service accepted: running in the background (work), or queued (work is None)
    until its deployment has finished the executions before it."""

    execution_id: str
    work: Work | None


@dataclass(frozen=True)
class KeyView:
    id: str
    public_key: str
    fingerprint: str
    created: str
    user: str | None  # the cluster account the key logs in as, if given


@dataclass(frozen=True)
class KeyCheck:
    """Whether the cluster's hosts let a key in: per host, ok or the reason."""

    key: str
    ok: bool
    hosts: dict[str, str]


@dataclass(frozen=True)
class StepState:
    id: str
    node: str
    operation: str | None
    status: str
    started: float | None
    ended: float | None


@dataclass(frozen=True)
class UserExecutionView:
    id: str
    workflow: str  # the exposed name
    status: str
    started: float
    ended: float | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    key: str | None
    steps: tuple[StepState, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()


def hash_token(token: str) -> str:
    # tokens are 256 random bits: a plain digest is enough (no dictionary to guess from)
    return hashlib.sha256(token.encode()).hexdigest()


def _schema(definition: InputDefinition) -> InputSchema:
    # a default computed by a function (get_artifact, concat, ...) has no value to show before it runs
    plain = next(iter_functions(definition.default), None) is None
    return InputSchema(definition.name, definition.type, definition.required and not definition.has_default,
                       definition.default if plain else None, definition.has_default, definition.description,
                       tuple(dict(c) for c in definition.constraints))


class Service(Background, Reading, Credentials):
    """data_roots: the folders of the orch server under which a user's input may name a path."""

    data_roots: tuple[Path, ...] = ()

    # -- users -----------------------------------------------------------------------------------

    def create_user(self, name: str, *, admin: bool = False) -> str:
        """A new user; returns their API token, shown this once (only its hash is kept)."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(name) > 64:
            raise UsageError(f"invalid user name {name!r}: use 1 to 64 of A-Z a-z 0-9 _ . -")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            self.store.add_user(name, hash_token(token), admin)
        except StoreError as exc:
            raise UsageError(str(exc)) from None
        return token

    def authenticate(self, token: str | None) -> User | None:
        if not token:
            return None
        return self.store.user_by_token_hash(hash_token(token))

    def users(self) -> list[User]:
        return self.store.users()

    # -- exposed workflows -------------------------------------------------------------------------

    def expose(self, deployment: str, workflow: str, as_name: str | None = None) -> Exposed:
        """Offer a deployed topology's workflow to the service's users."""
        existing = self._existing(deployment)
        topology = self._stored_topology(existing)
        if workflow not in topology.workflows:
            known = ", ".join(sorted(topology.workflows)) or "none"
            raise UsageError(f"deployment '{deployment}' has no workflow '{workflow}' (it has: {known})")
        name = as_name or f"{deployment}@{workflow}"
        self.store.expose(name, deployment, workflow)
        return next(e for e in self.store.exposed() if e.name == name)

    def unexpose(self, name: str) -> None:
        self._exposed(name)
        self.store.unexpose(name)

    def workflows(self) -> list[ExposedWorkflow]:
        found = []
        for exposed in self.store.exposed():
            deployment = self.store.deployment(exposed.deployment)
            if deployment is None or deployment.status != DeploymentStatus.DEPLOYED:
                continue  # undeployed or being changed: not offered
            topology = self._stored_topology(deployment)
            workflow = topology.workflows.get(exposed.workflow)
            if workflow is None:
                continue
            found.append(ExposedWorkflow(exposed.name, exposed.deployment, exposed.workflow, workflow.description,
                                         tuple(_schema(d) for d in workflow.inputs.values())))
        return found

    def warm(self) -> int:
        """Load every exposed workflow's topology and plan now, once, rather than in the first replies
        about it: a load holds the interpreter for about a second, and every reply in flight waits for it.
        Returns how many were loaded (a topology that no longer loads is left to the reply that needs it)."""
        loaded = 0
        for exposed in self.store.exposed():
            deployment = self.store.deployment(exposed.deployment)
            if deployment is None or deployment.status != DeploymentStatus.DEPLOYED:
                continue
            try:
                self._plan_of(deployment.name, exposed.workflow)
            except (UsageError, LoadError, KeyError):
                continue
            loaded += 1
        return loaded

    def _exposed(self, name: str) -> Exposed:
        for exposed in self.store.exposed():
            if exposed.name == name:
                return exposed
        raise NotFound(f"no workflow '{name}'")

    # -- the users' own SSH keys -------------------------------------------------------------------

    def create_user_key(self, user: User, *, cluster_user: str | None = None) -> KeyView:
        key_id = secrets.token_hex(4)
        credential = f"user.{user.name}.{key_id}"
        self.create_credential(credential, comment=f"orch:{user.name}", user=cluster_user)
        self.store.add_user_key(key_id, user.name, credential)
        return self._key_view(self._user_key(user, key_id))

    def user_keys(self, user: User) -> list[KeyView]:
        views = []
        for key in self.store.user_keys(user.name):
            try:
                views.append(self._key_view(key))
            except CredentialError:
                continue  # its credential is gone or damaged: not usable, not shown
        return views

    def delete_user_key(self, user: User, key_id: str) -> None:
        key = self._user_key(user, key_id)
        try:
            self.delete_credential(key.credential)
        except CredentialError:
            pass  # already gone: the record goes all the same
        self.store.delete_user_key(key_id)

    def verify_user_key(self, user: User, key_id: str, workflow: str) -> KeyCheck:
        """Log in with the key to every host of the exposed workflow's site (one SSH login each, nothing
        changed): does the cluster accept it yet?"""
        from orchestrator.engine.operations import login_targets
        from orchestrator.executors.inventory import OperationRequest

        key = self._user_key(user, key_id)
        exposed = self._exposed(workflow)
        deployment = self._existing(exposed.deployment)
        topology = self._stored_topology(deployment)
        login = LoginAs(key.credential, self.credential(key.credential).user)
        targets = login_targets(self._evaluation(deployment.name, topology, None, login))
        requests = [OperationRequest(f"verify_{name}", str(VERIFY_LOGIN), target, {}, f"{name} login")
                    for name, target in sorted(targets.items()) if not target.is_local]
        hosts = {name: "local: no login needed" for name, target in targets.items() if target.is_local}
        if requests:
            with self._executor() as executor:
                results = executor.run_batch(requests, timeout=120)
            for request in requests:
                result = results[request.alias]
                hosts[request.target.name] = "ok" if result.ok else (result.message or "refused")
        return KeyCheck(key_id, all(v == "ok" or v.startswith("local") for v in hosts.values()), hosts)

    def _user_key(self, user: User, key_id: str) -> UserKey:
        for key in self.store.user_keys(user.name):
            if key.id == key_id:
                return key
        raise NotFound(f"no ssh key '{key_id}'")

    def _key_view(self, key: UserKey) -> KeyView:
        credential = self.credential(key.credential)
        return KeyView(key.id, credential.public_key, credential.fingerprint, credential.created, credential.user)

    # -- executions --------------------------------------------------------------------------------

    def start_user_execution(self, user: User, workflow: str, inputs: Mapping[str, Any],
                             key_id: str | None = None) -> Submitted:
        """Start the execution now, or queue it while its deployment runs another (first come, first
        served: start_queued starts it when its turn comes). Bad inputs are refused either way, now."""
        exposed = self._exposed(workflow)
        login = self._login(user, key_id)
        problems = self._input_problems(inputs)
        if problems:
            raise Refused("; ".join(str(p) for p in problems), problems)
        if not any(e.deployment == exposed.deployment for e in self.queued_runs()):
            try:
                work = self.start_run(exposed.deployment, exposed.workflow, dict(inputs), login=login)
            except DeploymentBusy:
                pass  # running another execution (or a command holds it): wait in the queue
            else:
                self.store.add_user_execution(work.execution_id, user.name, exposed.name, key_id)
                return Submitted(work.execution_id, work)
        owner = UserExecution(new_execution_id(), user.name, exposed.name, key_id, 0.0)
        return Submitted(self.queue_run(exposed.deployment, exposed.workflow, dict(inputs), owner=owner), None)

    def start_queued(self) -> list[Work]:
        """Start each deployment's oldest queued user execution once the deployment is free; one that can
        no longer run (its deployment or key gone, its workflow no longer exposed) is failed with the reason."""
        started: list[Work] = []
        taken: set[str] = set()  # deployments whose turn is decided this round: first come, first served
        for waiting in self.queued_runs():
            if waiting.deployment in taken:
                continue
            taken.add(waiting.deployment)
            owned = self.store.user_execution(waiting.id)
            if owned is None or self.store.lock_is_live(waiting.deployment):
                continue
            try:
                self._exposed(owned.exposed)
                login = self._login(self._user_named(owned.user), owned.key_id)
                started.append(self.start_run(waiting.deployment, waiting.workflow, {}, login=login,
                                              queued=waiting.id))
            except DeploymentBusy:
                continue  # taken meanwhile (a CLI run, another server): next round
            except (UsageError, LoadError, CredentialError) as exc:
                self.refuse_queued(waiting.id, str(exc))
        return started

    def resume_user_execution(self, user: User, execution_id: str) -> Work:
        """Take up an execution whose process died (a server restarted): what completed is kept, a job
        that was submitted is watched again, not submitted again."""
        owned = self._owned(user, execution_id)
        exposed = self._exposed(owned.exposed)
        return self.start_run(exposed.deployment, exposed.workflow, {}, resume=execution_id,
                              login=self._login(user, owned.key_id))

    def _login(self, user: User, key_id: str | None) -> LoginAs | None:
        """How an execution of the user reaches the cluster: with their key, or (None) the topology's own."""
        if key_id is None:
            return None
        key = self._user_key(user, key_id)
        return LoginAs(key.credential, self.credential(key.credential).user)

    def _user_named(self, name: str) -> User:
        for user in self.store.users():
            if user.name == name:
                return user
        raise NotFound(f"no user '{name}'")

    def user_result_file(self, user: User, execution_id: str, output: str) -> Path:
        """A file on the orch server named by one of the execution's outputs (a result staged out here)."""
        view = self.user_execution(user, execution_id, detail=False)
        value = (view.outputs or {}).get(output)
        if not isinstance(value, str) or not value.startswith("/") or not Path(value).is_file():
            raise NotFound(f"execution '{execution_id}' has no result file '{output}' on this server")
        return Path(value)

    def user_executions(self, user: User, workflow: str | None = None) -> list[UserExecutionView]:
        return [self._user_view(owned) for owned in self.store.user_executions(user.name)
                if workflow is None or owned.exposed == workflow]

    def user_execution(self, user: User, execution_id: str, *, detail: bool = True) -> UserExecutionView:
        return self._user_view(self._owned(user, execution_id), detail=detail)

    def user_events(self, user: User, execution_id: str, after_id: int = 0) -> list[Event]:
        owned = self._owned(user, execution_id)
        return self.events(self._exposed_deployment(owned), execution_id, after_id)

    def user_log_page(self, user: User, execution_id: str, after_id: int = 0) -> tuple[bool, list[Event]]:
        """(whether the execution is over, its events after `after_id`): one step of a follower that waits
        elsewhere (the service's event stream awaits between pages instead of holding a thread asleep).
        Over is read before the events, so that the page after the last holds every event."""
        owned = self._owned(user, execution_id)
        deployment = self._exposed_deployment(owned)
        over = self.execution(deployment, execution_id).over
        return over, self.store.events(deployment, execution_id, after_id)

    def follow_user_execution(self, user: User, execution_id: str, after_id: int = 0, poll: float = 0.3):
        owned = self._owned(user, execution_id)
        return self.follow(self._exposed_deployment(owned), execution_id, after_id, poll)

    def cancel_user_execution(self, user: User, execution_id: str, wait: float = 0.0) -> str:
        owned = self._owned(user, execution_id)
        return self.cancel(self._exposed_deployment(owned), execution_id, wait=wait)

    def _owned(self, user: User, execution_id: str) -> UserExecution:
        owned = self.store.user_execution(execution_id)
        if owned is None or owned.user != user.name:
            raise NotFound(f"no execution '{execution_id}'")
        return owned

    def _exposed_deployment(self, owned: UserExecution) -> str:
        execution = self.store.execution(owned.execution_id)
        if execution is None:
            raise NotFound(f"no execution '{owned.execution_id}'")
        return execution.deployment

    def _user_view(self, owned: UserExecution, *, detail: bool = True) -> UserExecutionView:
        deployment = self._exposed_deployment(owned)
        view: ExecutionView = self.execution(deployment, owned.execution_id)
        steps: tuple[StepState, ...] = ()
        edges: tuple[tuple[str, str], ...] = ()
        if detail:
            steps, edges = self._steps(deployment, view)
        return UserExecutionView(view.id, owned.exposed, view.status, view.started, view.ended, view.inputs,
                                 view.outputs, view.error, owned.key_id, steps, edges)

    def _steps(self, deployment: str, view: ExecutionView) -> tuple[tuple[StepState, ...], tuple[tuple[str, str], ...]]:
        plan = self._plan_of(deployment, view.workflow)
        statuses = self.store.step_statuses(view.id)
        times: dict[str, tuple[float, float | None]] = {}
        for run in self.store.operation_runs(deployment, view.id):
            first = times.get(run.step_id)
            times[run.step_id] = (first[0] if first else run.started, run.ended)
        steps = tuple(StepState(s.id, s.node, s.operation, statuses.get(s.id, "pending"),
                                times.get(s.id, (None, None))[0], times.get(s.id, (None, None))[1])
                      for s in plan.steps)
        return steps, plan.edges

    def _plan_of(self, deployment: str, workflow: str):
        """The workflow's plan view, computed once per load of the deployment's topology (polls ask often)."""
        from orchestrator.plan.view import plan_view
        from orchestrator.plan.workflows import workflow_plan

        topology = self._stored_topology(self._existing(deployment))
        key = (deployment, workflow)
        with self._cache_lock:
            cached = self._plan_views.get(key)
        if cached is not None and cached[0] is topology:
            return cached[1]
        plan = plan_view(workflow_plan(topology, workflow))
        with self._cache_lock:
            self._plan_views[key] = (topology, plan)
        return plan

    def _input_problems(self, inputs: Mapping[str, Any]) -> list[Problem]:
        """A value naming a path of the orch server must lie under a data root: a user's input is never a
        way onto the server. (HOST:/path on the cluster and URLs are the workflow's business.)"""
        problems = []
        for name, value in inputs.items():
            if not isinstance(value, str):
                continue
            path = value[len("file://"):] if value.startswith("file://") else value
            if not path.startswith("/"):
                continue
            pure = PurePosixPath(path)
            if ".." in pure.parts or not any(_under(pure, root) for root in self.data_roots):
                roots = ", ".join(str(r) for r in self.data_roots) or "none configured"
                problems.append(Problem("inputs", name, f"a path on the orch server must lie under a data root "
                                        f"({roots})"))
        return problems


def _under(path: PurePosixPath, root: Path) -> bool:
    resolved = Path(path).resolve()
    return resolved == root.resolve() or root.resolve() in resolved.parents
