"""The scheduler: runs a plan's steps as their predecessors finish, several at once.

Ready steps that share a playbook go to the executor as one batch (one Ansible process for all of
them). Every transition is written to the store before the next decision. A failure stops new
steps, lets running ones finish, and is reported with its node, operation, host, task and message.
An unreachable host is retried with backoff; a failing task is not (unless the operation says so).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Protocol

import networkx as nx

from orchestrator.engine.operations import (Evaluation, PreparedStep, StepError, attributes_from_facts,
                                            outputs_from_facts, prepare)
from orchestrator.executors.ansible import AnsibleExecutor, OperationResult, TaskEvent
from orchestrator.model import Step
from orchestrator.store.sqlite import Store

DEFAULT_UNREACHABLE_RETRIES = 3
DEFAULT_RETRY_DELAY = 2.0


@dataclass(frozen=True)
class Failure:
    step: str
    node: str
    operation: str | None
    host: str
    task: str | None
    message: str
    unreachable: bool = False

    def __str__(self) -> str:
        task = f", task '{self.task}'" if self.task else ""
        return f"{self.node} {self.operation or ''} on {self.host}{task}: {self.message}"


@dataclass
class Outcome:
    ok: bool = True
    cancelled: bool = False
    failures: list[Failure] = field(default_factory=list)
    ran: int = 0


class Reporter(Protocol):
    def step_started(self, step: Step, host: str) -> None: ...
    def step_finished(self, step: Step, ok: bool, message: str | None) -> None: ...
    def task_event(self, step: Step, event: TaskEvent) -> None: ...


class SilentReporter:
    def step_started(self, step: Step, host: str) -> None:
        pass

    def step_finished(self, step: Step, ok: bool, message: str | None) -> None:
        pass

    def task_event(self, step: Step, event: TaskEvent) -> None:
        pass


@dataclass
class RetryPolicy:
    unreachable_retries: int = DEFAULT_UNREACHABLE_RETRIES
    failure_retries: int = 0
    delay: float = DEFAULT_RETRY_DELAY


class Scheduler:
    def __init__(self, store: Store, executor: AnsibleExecutor, evaluation: Evaluation, execution_id: str,
                 workers: int = 4, reporter: Reporter | None = None, cancel: threading.Event | None = None,
                 retry_policy: RetryPolicy | None = None,
                 skip: Callable[[Step], bool] | None = None):
        self.store = store
        self.executor = executor
        self.ev = evaluation
        self.execution_id = execution_id
        self.workers = max(1, workers)
        self.reporter = reporter or SilentReporter()
        self.cancel = cancel or threading.Event()
        self.retry_policy = retry_policy or RetryPolicy()
        self.skip = skip or (lambda step: False)

    def run(self, graph: nx.DiGraph, already_done: set[str] = frozenset()) -> Outcome:
        outcome = Outcome()
        waiting = {n: graph.in_degree(n) for n in graph.nodes}
        ready: list[str] = []
        attempts: dict[str, int] = defaultdict(int)
        retry_at: list[tuple[float, str]] = []

        def complete(step_id: str) -> None:
            for successor in graph.successors(step_id):
                waiting[successor] -= 1
                if waiting[successor] == 0:
                    ready.append(successor)

        # Steps finished by an earlier (interrupted or failed) attempt are kept, not run again.
        pending = [n for n, d in waiting.items() if d == 0]
        while pending:
            step_id = pending.pop()
            if step_id in already_done:
                for successor in graph.successors(step_id):
                    waiting[successor] -= 1
                    if waiting[successor] == 0:
                        pending.append(successor)
            else:
                ready.append(step_id)

        running: dict[cf.Future, list[PreparedStep]] = {}
        with cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="orch-op") as pool:
            while ready or running or retry_at:
                stopping = not outcome.ok or self.cancel.is_set()
                now = time.monotonic()
                for due in [r for r in retry_at if r[0] <= now]:
                    retry_at.remove(due)
                    if not stopping:
                        ready.append(due[1])
                if stopping:
                    ready.clear()
                    retry_at.clear()
                batch_room = self.workers - len(running)
                if ready and batch_room > 0:
                    immediate, batches = self._prepare_ready([graph.nodes[n]["step"] for n in ready], outcome)
                    ready.clear()
                    for step_id in immediate:
                        complete(step_id)
                    for batch in batches:
                        future = pool.submit(self._run_batch, batch)
                        running[future] = batch
                    continue
                if not running:
                    if retry_at:
                        time.sleep(max(0.0, min(r[0] for r in retry_at) - time.monotonic()))
                    continue
                done, _ = cf.wait(list(running), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    batch = running.pop(future)
                    results = future.result()
                    for prepared in batch:
                        result = results[prepared.request.alias]
                        attempts[prepared.step.id] += 1
                        if result.ok:
                            complete(prepared.step.id)
                            outcome.ran += 1
                        elif self._should_retry(prepared, result, attempts[prepared.step.id]):
                            delay = self._delay(prepared) * (2 ** (attempts[prepared.step.id] - 1))
                            self.store.add_event(self.ev.deployment, self.execution_id, "retry",
                                                 f"{prepared.step.id}: {result.message}; retrying in {delay:.0f}s",
                                                 prepared.step.node, prepared.step.operation)
                            retry_at.append((time.monotonic() + delay, prepared.step.id))
                        else:
                            outcome.ok = False
                            outcome.failures.append(Failure(prepared.step.id, prepared.step.node,
                                                            prepared.step.operation, prepared.host,
                                                            result.failed_task, result.message or "failed",
                                                            result.unreachable))
        outcome.cancelled = self.cancel.is_set()
        if outcome.cancelled and outcome.ok:
            outcome.ok = False
        return outcome

    def _should_retry(self, prepared: PreparedStep, result: OperationResult, attempt: int) -> bool:
        if self.cancel.is_set():
            return False
        operation = prepared.operation
        if result.unreachable:
            limit = operation.retries if operation and operation.retries is not None \
                else self.retry_policy.unreachable_retries
        else:
            limit = operation.retries if operation and operation.retries is not None \
                else self.retry_policy.failure_retries
        return attempt <= limit

    def _delay(self, prepared: PreparedStep) -> float:
        operation = prepared.operation
        return operation.retry_delay if operation and operation.retry_delay is not None else self.retry_policy.delay

    def _prepare_ready(self, steps: list[Step], outcome: Outcome) -> tuple[list[str], list[list[PreparedStep]]]:
        """Record no-ops and skips at once; group the rest into batches by playbook."""
        immediate: list[str] = []
        by_playbook: dict[str, list[PreparedStep]] = defaultdict(list)
        for step in sorted(steps, key=lambda s: s.id):
            if self.skip(step):
                self.store.set_step_status(self.execution_id, step.id, "skipped")
                immediate.append(step.id)
                continue
            try:
                prepared = prepare(step, self.ev)
            except StepError as exc:
                outcome.ok = False
                outcome.failures.append(Failure(step.id, step.node, step.operation, "-", None, str(exc)))
                self.store.set_step_status(self.execution_id, step.id, "failed")
                continue
            if prepared.request is None:
                run_id = self.store.operation_started(self.execution_id, self.ev.deployment, step.id, step.node,
                                                      step.operation or "", prepared.host, step.running_state)
                self.store.operation_done(run_id, self.execution_id, self.ev.deployment, step.id, step.node, {},
                                          {}, step.state)
                immediate.append(step.id)
                continue
            by_playbook[prepared.request.playbook].append(prepared)
        return immediate, list(by_playbook.values())

    def _run_batch(self, batch: list[PreparedStep]) -> dict[str, OperationResult]:
        run_ids: dict[str, int] = {}
        by_alias = {p.request.alias: p for p in batch}
        for prepared in batch:
            step = prepared.step
            run_ids[prepared.request.alias] = self.store.operation_started(
                self.execution_id, self.ev.deployment, step.id, step.node, step.operation or "", prepared.host,
                step.running_state)
            self.reporter.step_started(step, prepared.host)

        def on_event(event: TaskEvent) -> None:
            prepared = by_alias.get(event.alias)
            if prepared is None:
                return
            self.store.add_event(self.ev.deployment, self.execution_id, "task",
                                 f"{event.kind}: {event.task}" + (f" - {event.message}" if event.message else ""),
                                 prepared.step.node, prepared.step.operation,
                                 {"step": prepared.step.id, "task": event.task, "status": event.kind})
            self.reporter.task_event(prepared.step, event)

        try:
            results = self.executor.run_batch([p.request for p in batch], on_event=on_event, cancel=self.cancel,
                                              timeout=_batch_timeout(batch))
        except Exception as exc:  # noqa: BLE001 - any executor crash fails the batch, never the engine
            results = {p.request.alias: OperationResult(p.request.alias, ok=False,
                                                        message=f"executor error: {type(exc).__name__}: {exc}")
                       for p in batch}
        for alias, result in results.items():
            prepared = by_alias[alias]
            step = prepared.step
            if result.ok:
                node = self.ev.topology.nodes[step.node]
                attributes = attributes_from_facts(node, result.facts) if step.requirement is None else {}
                self.store.operation_done(run_ids[alias], self.execution_id, self.ev.deployment, step.id,
                                          step.node, outputs_from_facts(result.facts), attributes, step.state)
            else:
                message = result.message or "failed"
                if result.failed_task:
                    message = f"task '{result.failed_task}': {message}"
                self.store.operation_failed(run_ids[alias], self.execution_id, step.id, message,
                                            outputs_from_facts(result.facts))
            self.reporter.step_finished(step, result.ok, result.message)
        return results


def _batch_timeout(batch: list[PreparedStep]) -> float | None:
    timeouts = [p.operation.timeout for p in batch if p.operation and p.operation.timeout]
    return max(timeouts) if timeouts else None
