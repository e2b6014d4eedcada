"""Per-operation results read from Ansible's task events (the inventory alias of each event says which
operation it belongs to), so outputs and failures stay exact when operations share one run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskEvent:
    alias: str
    kind: str  # ok, changed, failed, unreachable, skipped
    task: str
    message: str = ""


@dataclass
class OperationResult:
    alias: str
    ok: bool = True
    unreachable: bool = False
    facts: dict[str, Any] = field(default_factory=dict)
    failed_task: str | None = None
    message: str | None = None
    events: list[TaskEvent] = field(default_factory=list)


def result_from_events(aliases: list[str], events: list[dict[str, Any]], rc: int,
                       stdout_tail: str) -> dict[str, OperationResult]:
    """Per-operation results from ansible-runner's task events (not the fact cache, which breaks with 2.19)."""
    results = {alias: OperationResult(alias) for alias in aliases}
    # Ansible exits non-zero when any host failed; with the final stats seen, per-host events decide.
    play_finished = any(event.get("event") == "playbook_on_stats" for event in events)
    for event in events:
        data = event.get("event_data") or {}
        alias = data.get("host")
        if alias not in results:
            continue
        result = results[alias]
        res = data.get("res") or {}
        task = str(data.get("task") or "")
        kind = event.get("event", "")
        if kind == "runner_on_ok":
            facts = res.get("ansible_facts") or {}
            result.facts.update(facts)
            result.events.append(TaskEvent(alias, "changed" if res.get("changed") else "ok", task))
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            result.ok = False
            result.failed_task = task
            result.message = _failure_message(res)
            result.events.append(TaskEvent(alias, "failed", task, result.message))
        elif kind == "runner_on_unreachable":
            result.ok = False
            result.unreachable = True
            result.failed_task = task
            result.message = "host unreachable: " + str(res.get("msg", "")).strip()
            result.events.append(TaskEvent(alias, "unreachable", task, result.message))
        elif kind == "runner_on_skipped":
            result.events.append(TaskEvent(alias, "skipped", task))
    if rc != 0 and not play_finished:
        for result in results.values():
            if result.ok:  # the process failed before this operation's tasks could (e.g. a syntax error)
                result.ok = False
                result.message = result.message or ("ansible-playbook failed: " + stdout_tail.strip()[-1500:])
    return results


def _failure_message(res: Mapping[str, Any]) -> str:
    parts = [str(res.get("msg", "")).strip()]
    for key in ("stderr", "stdout"):
        text = str(res.get(key) or "").strip()
        if text and text not in parts[0]:
            parts.append(f"{key}: {text[-1500:]}")
    if res.get("rc") not in (None, 0):
        parts.append(f"rc={res['rc']}")
    return "; ".join(p for p in parts if p) or "task failed"
