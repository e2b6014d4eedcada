"""The scheduler: runs a plan's steps as their predecessors finish, several at once.

Ready steps that share a playbook go to the executor as one batch (one Ansible process for all of
them); the job watches of one host whose playbook can poll many are polled together, as one request
per host and round (jobs.group_watches). Many submits ready at once go in runs of
jobs.SUBMITS_PER_RUN, one run at a time, so that the first jobs are watched while the later ones are
submitted. Every transition is written to the store before the next decision. A failure stops new
steps, lets running ones finish, and is reported with its node, operation, host, task and message. An
unreachable host is retried with backoff; a failing task is not (unless the operation says so).
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import networkx as nx

from orchestrator import failpoints
from orchestrator.engine import jobs
from orchestrator.engine.operations import (
    Evaluation,
    PreparedStep,
    StepError,
    attribute_updates,
    hosts_inventory,
    outputs_from_facts,
    prepare,
)
from orchestrator.executors.base import Executor
from orchestrator.executors.results import OperationResult, TaskEvent
from orchestrator.model import Step, StepKind
from orchestrator.store.base import StepStatus, Store

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
    def __init__(self, store: Store, executor: Executor, evaluation: Evaluation, execution_id: str,
                 workers: int = 4, reporter: Reporter | None = None, cancel: threading.Event | None = None,
                 retry_policy: RetryPolicy | None = None,
                 skip: Callable[[Step], bool] | None = None,
                 should_cancel: Callable[[], bool] | None = None):
        self.store = store
        self.executor = executor
        self.ev = evaluation
        self.execution_id = execution_id
        self.workers = max(1, workers)
        self.reporter = reporter or SilentReporter()
        self.cancel = cancel or threading.Event()
        self.retry_policy = retry_policy or RetryPolicy()
        self.skip = skip or (lambda step: False)
        self.should_cancel = should_cancel or (lambda: False)

    def run(self, graph: nx.DiGraph, already_done: set[str] = frozenset()) -> Outcome:
        run = _Run(graph, already_done)
        outcome = Outcome()
        with cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="orch-op") as pool:
            while run.ready or run.running or run.due or run.submits_queued:
                if self.should_cancel():
                    self.cancel.set()
                stopping = run.unhandled_failure or self.cancel.is_set()
                now = time.monotonic()
                for due in [d for d in run.due if d[0] <= now]:
                    run.due.remove(due)
                    if not stopping or due[1] in run.monitors:
                        run.ready.append(due[1])  # job monitors keep watching until the jobs are cancelled
                if stopping:
                    run.submits_queued.clear()  # not started: nothing of theirs to watch or cancel
                    run.ready = [r for r in run.ready if r in run.monitors and not self.cancel.is_set()]
                    run.due = [d for d in run.due if d[1] in run.monitors and not self.cancel.is_set()]
                launch = run.launchable() if run.ready and len(run.running) < self.workers else []
                if launch:  # (watches held back wait for their group's poll in flight, below)
                    steps = [graph.nodes[n]["step"] for n in launch]
                    for step_id, ok in self._prepare_ready(steps, outcome, run):
                        self._settle(run, outcome, step_id, ok)
                    for batch in run.batches:
                        run.running[pool.submit(self._run_batch, batch, run)] = batch
                        run.polling.update(run.groups_of(batch))
                    run.batches = []
                    continue
                if run.submits_queued and not run.submitting and len(run.running) < self.workers:
                    batch = run.submits_queued.pop(0)
                    future = pool.submit(self._run_batch, batch, run)
                    run.running[future] = batch
                    run.submitting = future
                    continue
                if not run.running:
                    if run.due:
                        time.sleep(max(0.0, min(0.5, min(d[0] for d in run.due) - time.monotonic())))
                    continue
                done, _ = cf.wait(list(run.running), timeout=0.25, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    batch = run.running.pop(future)
                    if future is run.submitting:
                        run.submitting = None
                    run.polling.subtract(run.groups_of(batch))
                    results = future.result()
                    ended = time.monotonic()  # one moment for the whole batch: its watches stay in step
                    for prepared in batch:
                        self._after_result(run, outcome, prepared, results[prepared.request.alias], ended)
            if self.cancel.is_set():
                self._cancel_jobs(run, outcome)
        outcome.cancelled = self.cancel.is_set()
        if outcome.cancelled or run.failed:
            outcome.ok = False
        return outcome

    def _after_result(self, run: _Run, outcome: Outcome, prepared: PreparedStep, result: OperationResult,
                      ended: float) -> None:
        step = prepared.step
        run.attempts[step.id] += 1
        if result.ok and prepared.is_monitor:
            report = jobs.JobReport.from_facts(result.facts)
            if report.running:
                if not self.cancel.is_set():
                    gap = jobs.MANY_GAP if step.id in run.watch_groups else run.backoff.next(step.id)
                    run.due.append((ended + gap, step.id))
                return  # when cancelling, the job is cancelled and its watch closed by _cancel_jobs
            run.jobs_finished.add(step.node)
            if not report.succeeded:
                result.ok = False
                result.message = report.failure()
        self._record_monitor_end(run, prepared, result)
        if result.ok:
            if jobs.is_submit(step):
                run.jobs_submitted.add(step.node)
            self._settle(run, outcome, step.id, True)
            outcome.ran += 1
        elif self._should_retry(prepared, result, run.attempts[step.id]):
            delay = self._delay(prepared) * (2 ** (run.attempts[step.id] - 1))
            self.store.add_event(self.ev.deployment, self.execution_id, "retry",
                                 f"{step.id}: {result.message}; retrying in {delay:.0f}s", step.node, step.operation)
            run.due.append((time.monotonic() + delay, step.id))
        else:
            outcome.failures.append(Failure(step.id, step.node, step.operation, prepared.host, result.failed_task,
                                            result.message or "failed", result.unreachable))
            self._settle(run, outcome, step.id, False)

    def _settle(self, run: _Run, outcome: Outcome, step_id: str, ok: bool) -> None:
        """A step ended: release its successors, or its failure handlers."""
        if ok:
            run.complete(step_id)
            return
        run.failed = True
        handlers = run.failure_handlers(step_id)
        if handlers:
            run.ready.extend(h for h in handlers if h not in run.started_handlers)
            run.started_handlers.update(handlers)
        else:
            run.unhandled_failure = True

    def _cancel_jobs(self, run: _Run, outcome: Outcome) -> None:
        """Cancelling: Runnable.cancel on every job this execution submitted and did not see finish."""
        for step_id, run_id in list(run.monitor_runs.items()):
            self.store.operation_failed(run_id, self.execution_id, step_id, "cancelled")
            run.monitor_runs.pop(step_id)
        for node in sorted(run.jobs_submitted - run.jobs_finished):
            step = jobs.cancel_step(node)
            try:
                prepared = prepare(step, self.ev)
            except StepError as exc:
                outcome.failures.append(Failure(step.id, node, step.operation, "-", None, str(exc)))
                continue
            if prepared.request is None:
                continue
            results = self._run_batch([prepared], run)
            if not results[prepared.request.alias].ok:
                outcome.failures.append(Failure(step.id, node, step.operation, prepared.host, None,
                                                results[prepared.request.alias].message or "cancel failed"))
            self.store.add_event(self.ev.deployment, self.execution_id, "job", f"cancelled the job of {node}", node,
                                 "Runnable.cancel")

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

    def _prepare_ready(self, steps: list[Step], outcome: Outcome, run: _Run) -> list[tuple[str, bool]]:
        """Settle at once what needs no Ansible (skips, no-ops, state changes); batch the rest by playbook."""
        immediate: list[tuple[str, bool]] = []
        by_playbook: dict[str, list[PreparedStep]] = defaultdict(list)
        hosts = functools.cache(lambda: hosts_inventory(self.ev))  # ORCH_HOSTS reads the store: once per wave
        for step in sorted(steps, key=lambda s: s.id):
            if self.skip(step):
                self.store.set_step_status(self.execution_id, step.id, StepStatus.SKIPPED)
                immediate.append((step.id, True))
                continue
            if step.kind == StepKind.SET_STATE:
                self.store.set_state(self.ev.deployment, step.node, step.state or "")
                self.store.set_step_status(self.execution_id, step.id, StepStatus.DONE)
                immediate.append((step.id, True))
                continue
            try:
                prepared = prepare(step, self.ev, hosts)
            except StepError as exc:
                outcome.failures.append(Failure(step.id, step.node, step.operation, "-", None, str(exc)))
                self.store.set_step_status(self.execution_id, step.id, StepStatus.FAILED)
                immediate.append((step.id, False))
                continue
            if prepared.request is None:
                run_id = self.store.operation_started(self.execution_id, self.ev.deployment, step.id, step.node,
                                                      step.operation or "", prepared.host, step.running_state)
                self.store.operation_done(run_id, self.execution_id, self.ev.deployment, step.id, step.node, {},
                                          {}, step.state)
                immediate.append((step.id, True))
                continue
            if prepared.is_monitor and not run.attempts[step.id] and self._ended_at_submit(run, prepared):
                immediate.append((step.id, True))
                continue
            if prepared.is_monitor:
                run.monitors.add(step.id)
                if jobs.groupable(prepared.request):
                    group = run.watch_groups[step.id] = jobs.group_key(prepared.request)
                    if run.polling[group] > 0:  # a first watch, while its host is polled: it joins the next poll
                        run.ready.append(step.id)
                        continue
            by_playbook[prepared.request.playbook].append(prepared)
        for batch in by_playbook.values():
            if len(batch) > jobs.SUBMITS_PER_RUN and all(jobs.is_submit(p.step) for p in batch):
                run.submits_queued.extend(jobs.submit_runs(batch))
            else:
                run.batches.append(batch)
        return immediate

    def _ended_at_submit(self, run: _Run, prepared: PreparedStep) -> bool:
        """Whether the job's submit waited for its end (the embedded mover moves the data while it submits)
        and said it COMPLETED (TOSCA_JOB_STATUS among its outputs): then its watch is settled from that, done,
        without a poll: one Ansible run fewer per data move. Any other status is the watch's to judge."""
        step = prepared.step
        report = jobs.JobReport.from_facts({
            "TOSCA_JOB_ID": prepared.request.variables.get("TOSCA_JOB_ID"),
            "TOSCA_JOB_STATUS": self.ev.read_operation_output(step.node, jobs.SUBMIT, "TOSCA_JOB_STATUS") or ""})
        if not report.succeeded:
            return False
        run_id = self.store.operation_started(self.execution_id, self.ev.deployment, step.id, step.node,
                                              step.operation or "", prepared.host, step.running_state)
        self.reporter.step_started(step, prepared.host)
        run.job_status[step.node] = report.status
        run.jobs_finished.add(step.node)
        self.store.add_event(self.ev.deployment, self.execution_id, "job",
                             f"job {report.job_id} of {step.node}: {report.status} (as its submit reported)",
                             step.node, step.operation, {"status": report.status})
        facts = {"TOSCA_JOB_ID": report.job_id, "TOSCA_JOB_STATUS": report.status}
        self._record_done(run_id, step, OperationResult(prepared.request.alias, facts=facts))
        self.reporter.step_finished(step, True, None)
        return True

    def _run_batch(self, batch: list[PreparedStep], run: _Run) -> dict[str, OperationResult]:
        run_ids: dict[str, int] = {}
        by_alias = {p.request.alias: p for p in batch}
        for prepared in batch:
            step = prepared.step
            if prepared.is_monitor and step.id in run.monitor_runs:
                continue  # a further poll of a job already being watched
            run_id = self.store.operation_started(self.execution_id, self.ev.deployment, step.id, step.node,
                                                  step.operation or "", prepared.host, step.running_state)
            if prepared.is_monitor:
                run.monitor_runs[step.id] = run_id
            else:
                run_ids[prepared.request.alias] = run_id
            self.reporter.step_started(step, prepared.host)
        failpoints.reached("operation-started")

        def on_event(event: TaskEvent) -> None:
            prepared = by_alias.get(event.alias)
            if prepared is None or (prepared.is_monitor and event.kind in ("ok", "skipped")):
                return  # polls that change nothing would flood the log
            self.store.add_event(self.ev.deployment, self.execution_id, "task",
                                 f"{event.kind}: {event.task}" + (f" - {event.message}" if event.message else ""),
                                 prepared.step.node, prepared.step.operation,
                                 {"step": prepared.step.id, "task": event.task, "status": event.kind})
            self.reporter.task_event(prepared.step, event)

        watches = {p.request.alias: run.job_status.get(p.step.node, "") for p in batch if p.is_monitor}
        requests, groups = jobs.group_watches([p.request for p in batch], watches)
        members = {g.request.alias: g.members for g in groups}

        def on_any_event(event: TaskEvent) -> None:
            for member in members.get(event.alias, ()):  # a poll of many jobs: each watch logs its failure
                on_event(replace(event, alias=member.alias))
            on_event(event)

        try:
            uninterruptible = any(jobs.must_run_to_its_end(p.step) for p in batch)
            results = self.executor.run_batch(requests, on_event=on_any_event,
                                              cancel=None if uninterruptible else self.cancel,
                                              timeout=_batch_timeout(batch))
            for group in groups:
                results.update(group.results(results.pop(group.request.alias, None)))
        except Exception as exc:  # noqa: BLE001 - any executor crash fails the batch, never the engine
            results = {p.request.alias: OperationResult(p.request.alias, ok=False,
                                                        message=f"executor error: {type(exc).__name__}: {exc}")
                       for p in batch}
        for alias, result in results.items():
            prepared = by_alias[alias]
            step = prepared.step
            if prepared.is_monitor:
                report = jobs.JobReport.from_facts(result.facts)
                if result.ok and run.job_status.get(step.node) != report.status:
                    run.job_status[step.node] = report.status
                    self.store.add_event(self.ev.deployment, self.execution_id, "job",
                                         f"job {report.job_id} of {step.node}: {report.status}",
                                         step.node, step.operation, {"status": report.status})
                continue  # its run record is closed by _record_monitor_end once the job is over
            if result.ok:
                self._record_done(run_ids[alias], step, result)
            else:
                self.store.operation_failed(run_ids[alias], self.execution_id, step.id, _failure_text(result),
                                            outputs_from_facts(result.facts))
            self.reporter.step_finished(step, result.ok, result.message)
        return results

    def _record_done(self, run_id: int, step: Step, result: OperationResult) -> None:
        """A step succeeded: the attributes it set on other entities (attribute mappings onto another node or a
        relationship), then, in one transaction, its outputs, its node's attributes, the step done."""
        updates = attribute_updates(self.ev.topology, step, result.facts)
        for key, values in updates.items():
            if key != step.node and values:
                self.store.set_attributes(self.ev.deployment, key, values)
        self.store.operation_done(run_id, self.execution_id, self.ev.deployment, step.id, step.node,
                                  outputs_from_facts(result.facts), updates.get(step.node, {}), step.state)
        failpoints.reached("operation-done")

    def _record_monitor_end(self, run: _Run, prepared: PreparedStep, result: OperationResult) -> None:
        if not prepared.is_monitor or prepared.step.id not in run.monitor_runs:
            return
        step = prepared.step
        run_id = run.monitor_runs.pop(step.id)
        if result.ok:
            self._record_done(run_id, step, result)
        else:
            self.store.operation_failed(run_id, self.execution_id, step.id, _failure_text(result),
                                        outputs_from_facts(result.facts))
        self.reporter.step_finished(step, result.ok, result.message)


class _Run:
    """The changing state of one plan being run (owned by the scheduler's loop)."""

    def __init__(self, graph: nx.DiGraph, already_done: set[str]):
        self.graph = graph
        self.waiting = {n: sum(1 for p in graph.predecessors(n) if not _is_failure_edge(graph, p, n))
                        for n in graph.nodes}
        handlers_only = {n for n in graph.nodes if any(_is_failure_edge(graph, p, n) for p in graph.predecessors(n))}
        self.ready: list[str] = []
        self.running: dict[cf.Future, list[PreparedStep]] = {}
        self.batches: list[list[PreparedStep]] = []
        self.submits_queued: list[list[PreparedStep]] = []  # runs of many submits, started one at a time
        self.submitting: cf.Future | None = None  # the run of them in flight
        self.due: list[tuple[float, str]] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.monitors: set[str] = set()
        self.monitor_runs: dict[str, int] = {}
        self.watch_groups: dict[str, tuple] = {}  # watch -> its host's group (jobs.group_key)
        self.polling: Counter = Counter()  # groups with a poll in flight
        self.backoff = jobs.PollBackoff()
        self.job_status: dict[str, str] = {}
        self.jobs_submitted: set[str] = set()
        self.jobs_finished: set[str] = set()
        self.started_handlers: set[str] = set()
        self.failed = False
        self.unhandled_failure = False
        # Steps finished by an earlier (interrupted or failed) attempt are kept, not run again.
        pending = [n for n, d in self.waiting.items() if d == 0 and n not in handlers_only]
        while pending:
            step_id = pending.pop()
            if step_id in already_done:
                pending.extend(self._release(step_id))
            else:
                self.ready.append(step_id)

    def launchable(self) -> list[str]:
        """Take the ready steps to start now. The watches of a host are polled together: one of them ready
        brings its group mates waiting for their next poll along, and none starts while a poll of its group
        is in flight (it joins the next one), so that a round stays one poll per host."""
        groups = {self.watch_groups[r] for r in self.ready if r in self.watch_groups}
        groups = {g for g in groups if self.polling[g] <= 0}
        mates = [d for d in self.due if self.watch_groups.get(d[1]) in groups]
        for due in mates:
            self.due.remove(due)
        candidates = self.ready + [d[1] for d in mates]
        held = [r for r in candidates if r in self.watch_groups and self.polling[self.watch_groups[r]] > 0]
        launch = [r for r in candidates if r not in held]
        self.ready = held
        return launch

    def groups_of(self, batch: list[PreparedStep]) -> Counter:
        return Counter({self.watch_groups[p.step.id] for p in batch if p.step.id in self.watch_groups})

    def _release(self, step_id: str) -> list[str]:
        released = []
        for successor in self.graph.successors(step_id):
            if _is_failure_edge(self.graph, step_id, successor):
                continue
            self.waiting[successor] -= 1
            if self.waiting[successor] == 0:
                released.append(successor)
        return released

    def complete(self, step_id: str) -> None:
        self.ready.extend(self._release(step_id))

    def failure_handlers(self, step_id: str) -> list[str]:
        return [s for s in self.graph.successors(step_id) if _is_failure_edge(self.graph, step_id, s)]


def _is_failure_edge(graph: nx.DiGraph, a: str, b: str) -> bool:
    return graph.edges[a, b].get("when") == "failure"


def _failure_text(result: OperationResult) -> str:
    message = result.message or "failed"
    return f"task '{result.failed_task}': {message}" if result.failed_task else message


def _batch_timeout(batch: list[PreparedStep]) -> float | None:
    timeouts = [p.operation.timeout for p in batch if p.operation and p.operation.timeout]
    return max(timeouts) if timeouts else None
