"""What every use case of the API shares: the home, the store, the executor, and loading a
deployment's topology again."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.api import topology_cache
from orchestrator.credentials import CredentialError, CredentialStore
from orchestrator.credentials.reader import secret_reader
from orchestrator.credentials.sealed import unseal
from orchestrator.engine.evaluate import evaluate
from orchestrator.engine.operations import Evaluation, LoginAs
from orchestrator.engine.scheduler import Reporter, RetryPolicy, Scheduler
from orchestrator.executors.base import Executor
from orchestrator.functions import FunctionError
from orchestrator.home import deployment_dir
from orchestrator.model import LoadError, Topology, UsageError
from orchestrator.store.base import Deployment, Store
from orchestrator.store.sqlite import SqliteStore
from orchestrator.tosca import csar
from orchestrator.tosca.inputs import resolve_input_values

INSTALL, UNINSTALL = "install", "uninstall"
ExecutorFactory = Callable[[Path], Executor]


def ansible_executor(home: Path, nice: int = 0) -> Executor:
    from orchestrator.executors.ansible import AnsibleExecutor

    # warm: Ansible loads in a worker while the command loads its topology (2 cores: ~1 s off each command)
    return AnsibleExecutor(home, warm=True, nice=nice)


class PooledAnsibleExecutors:
    """The executor factory of a long-lived process (the service): each command's executor starts with an
    Ansible worker that a pool started and warmed beforehand, so an execution pays no interpreter start
    (see executors.ansible.WorkerPool); workers at `nice`, so that the service's replies come first.
    start() fills the pool (until then, and after close(), each executor starts its own worker, as a
    command's does), close() ends the workers still waiting."""

    def __init__(self, nice: int = 0):
        self.nice = nice
        self._pool = None
        self._lock = threading.Lock()

    def start(self) -> None:
        from orchestrator.executors.ansible import WorkerPool

        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(nice=self.nice)

    def __call__(self, home: Path) -> Executor:
        from orchestrator.executors.ansible import AnsibleExecutor

        return AnsibleExecutor(home, warm=True, nice=self.nice, pool=self._pool)

    @property
    def ready_pids(self) -> list[int]:
        """The process ids of the warm workers waiting for the next command."""
        with self._lock:
            return self._pool.ready_pids if self._pool is not None else []

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def load_topology(path: str, inputs: Mapping[str, Any], *, allow_remote_imports: bool = False,
                  unpack_dir: Path | None = None) -> Topology:
    # imported here: tosca-parser takes ~0.5 s to import, and commands that never load a topology skip it
    from orchestrator.tosca.loader import load

    return load(path, inputs, allow_remote_imports=allow_remote_imports, unpack_dir=unpack_dir)


def load_topology_with_files(path: str, inputs: Mapping[str, Any], *, allow_remote_imports: bool = False,
                             unpack_dir: Path | None = None) -> tuple[Topology, tuple[str, ...]]:
    """load_topology, with the files the loader read (what a kept copy is checked against)."""
    from orchestrator.tosca.loader import load_with_files

    return load_with_files(path, inputs, allow_remote_imports=allow_remote_imports, unpack_dir=unpack_dir)


class Core:
    """executor: an Executor made (and closed) by the caller, shared by every command of this object;
    otherwise each command makes its own with executor_factory (Ansible by default)."""

    def __init__(self, home: Path, workers: int = 4, executor: Executor | None = None, *,
                 store: Store | None = None, executor_factory: ExecutorFactory = ansible_executor,
                 store_factory: Callable[[Path], Store] = SqliteStore, store_per_thread: bool = False):
        self.home = home
        self._store = store
        self.store_factory = store_factory  # each background work opens a connection of its own with it
        # a server's request threads each get a connection: one shared connection serialises every reply
        self.store_per_thread = store_per_thread and store is None
        self._thread_stores = threading.local()
        self._opened: list[Store] = []
        self.workers = workers
        self.given_executor = executor
        self.executor_factory = executor_factory
        self._topologies: dict[str, tuple[tuple, Topology]] = {}
        self._plan_views: dict[tuple[str, str], tuple[Topology, Any]] = {}  # (deployment, workflow): its steps
        self._cache_lock = threading.Lock()

    @property
    def store(self) -> Store:
        """Opened on first use: validate, plan and credentials never create a store."""
        if self.store_per_thread:
            store = getattr(self._thread_stores, "store", None)
            if store is None:
                store = self._thread_stores.store = self.store_factory(self.home)
                with self._cache_lock:
                    self._opened.append(store)
            return store
        if self._store is None:
            self._store = self.store_factory(self.home)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        with self._cache_lock:
            opened, self._opened = self._opened, []
        for store in opened:
            store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- shared internals ------------------------------------------------------------------------

    def _existing(self, name: str) -> Deployment:
        deployment = self.store.deployment(name)
        if deployment is None:
            raise UsageError(f"no deployment named '{name}'")
        return deployment

    def _deployment_dir(self, name: str) -> Path:
        return deployment_dir(self.home, name)

    def _unsealed(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return unseal(self.home, stored)
        except CredentialError as exc:
            raise UsageError(str(exc)) from None

    def _load_for_deployment(self, name: str, path: str, inputs: Mapping[str, Any], allow_remote: bool,
                             reuse: bool = False) -> Topology:
        """A CSAR is unpacked into the deployment's own folder at deploy time and read from there after.
        What load produces is kept with the deployment (topology_cache) and used while the files it read,
        the inputs and orch are unchanged: undeploy, resume and run of such a deployment skip tosca-parser."""
        if csar.is_csar(path):
            stored = self.store.deployment(name)
            if reuse and stored is not None and Path(stored.template_file).is_file():
                return self._kept_or_loaded(name, stored.template_file, inputs, False)
            # unpacked anew, not kept from here: the first reload reads the unpacked folder and keeps what it read
            return load_topology(path, inputs, allow_remote_imports=allow_remote,
                                 unpack_dir=self._deployment_dir(name) / "csar")
        return self._kept_or_loaded(name, path, inputs, allow_remote)

    def _kept_or_loaded(self, name: str, path: str, inputs: Mapping[str, Any], allow_remote: bool) -> Topology:
        # keyed by the absolute path, as the store keeps it: a deploy given a relative path and the undeploy
        # that reloads the stored one then share the copy
        source = str(Path(path).resolve())
        directory = self._deployment_dir(name)
        kept = topology_cache.read(directory, source, inputs)
        if kept is not None:
            return kept if source == path else replace(kept, path=path)
        topology, files = load_topology_with_files(path, inputs, allow_remote_imports=allow_remote)
        topology_cache.write(directory, source, inputs, replace(topology, path=source), files)
        return topology

    def _stored_topology(self, deployment: Deployment) -> Topology:
        """The deployment's topology loaded again, once per change of the deployment: a service answering
        status polls would otherwise run the whole loader (tosca-parser included) on every request."""
        template = Path(deployment.template_file)
        key = (deployment.name, deployment.updated, deployment.topology_path,
               template.stat().st_mtime_ns if template.is_file() else 0)
        with self._cache_lock:
            cached = self._topologies.get(deployment.name)
        if cached is not None and cached[0] == key:
            return cached[1]
        topology = self._load_for_deployment(deployment.name, deployment.topology_path,
                                             self._unsealed(deployment.inputs), False, reuse=True)
        with self._cache_lock:
            self._topologies[deployment.name] = (key, topology)
        return topology

    def _evaluation(self, name: str, topology: Topology, inputs: Mapping[str, Any] | None = None,
                    login: LoginAs | None = None) -> Evaluation:
        effective = dict(topology.input_values)
        effective.update(inputs or {})
        directory = self._deployment_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        return Evaluation(topology, name, effective,
                          read_attribute=lambda node, attr: self.store.attribute(name, node, attr),
                          read_operation_output=lambda node, op, out: self.store.operation_output(name, node, op, out),
                          read_secret=secret_reader(CredentialStore(self.home)),
                          deployment_dir=str(directory), login=login)

    @contextlib.contextmanager
    def _executor(self) -> Iterator[Executor]:
        if self.given_executor is not None:
            yield self.given_executor
            return
        with self.executor_factory(self.home) as executor:
            yield executor

    def _scheduler(self, name: str, topology: Topology, execution_id: str, executor: Executor,
                   reporter: Reporter | None, cancel: threading.Event | None, skip=None,
                   inputs: Mapping[str, Any] | None = None, login: LoginAs | None = None) -> Scheduler:
        # a cancel asked by id (from this process or another) reaches the run through the store
        return Scheduler(self.store, executor, self._evaluation(name, topology, inputs, login),
                         execution_id, workers=self.workers, reporter=reporter, cancel=cancel,
                         retry_policy=retry_policy(topology), skip=skip,
                         should_cancel=lambda: self.store.cancel_requested(execution_id))

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


def resume_command(name: str, workflow: str, execution_id: str) -> str:
    if workflow == INSTALL:
        return f"orch deploy --resume {name}"
    if workflow == UNINSTALL:
        return f"orch undeploy {name}"
    return f"orch run {name} --resume {execution_id}"
