"""Show a plan (model.PlanView): text (waves of steps that may run together), json, Graphviz dot, Mermaid.

Pure functions of plain data: the CLI prints them, the service will serve them."""

from __future__ import annotations

import json

from orchestrator.model import PlanView, Step


def _label(step: Step) -> str:
    if step.operation:
        return f"{step.id}" if step.is_relationship else f"{step.node} {step.operation}"
    return f"{step.node} set_state {step.state}"


def as_text(plan: PlanView) -> str:
    lines = []
    for number, wave in enumerate(plan.waves, start=1):
        lines.append(f"wave {number}:")
        for step in wave:
            marker = "" if plan.implemented is None or step.id in plan.implemented else "  (no-op)"
            lines.append(f"  {_label(step)}{marker}")
    return "\n".join(lines)


def as_json(plan: PlanView) -> str:
    after: dict[str, list[str]] = {}
    for a, b in plan.edges:
        after.setdefault(b, []).append(a)
    steps = [{"id": s.id, "node": s.node, "operation": s.operation, "state": s.state, "side": s.side,
              "after": sorted(after.get(s.id, []))} for s in plan.steps]
    return json.dumps({"steps": steps}, indent=2)


def _dot_quote(text: str) -> str:
    """Graphviz strings: only backslash and double quote need escaping; UTF-8 stays as it is."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_dot(plan: PlanView) -> str:
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for step in sorted(plan.steps, key=lambda s: s.id):
        lines.append(f"  {_dot_quote(step.id)} [label={_dot_quote(_label(step))}];")
    for a, b in sorted(plan.edges):
        lines.append(f"  {_dot_quote(a)} -> {_dot_quote(b)};")
    lines.append("}")
    return "\n".join(lines)


def as_mermaid(plan: PlanView) -> str:
    steps = sorted(plan.steps, key=lambda s: s.id)
    ids = {step.id: f"s{i}" for i, step in enumerate(steps)}
    lines = ["flowchart LR"]
    for step in steps:
        label = _label(step).replace('"', "'")
        lines.append(f'  {ids[step.id]}["{label}"]')
    for a, b in sorted(plan.edges):
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines)


RENDERERS = {"text": as_text, "json": as_json, "dot": as_dot, "mermaid": as_mermaid}
FORMATS = tuple(sorted(RENDERERS))


def periodic_line(summary: dict) -> str:
    """A periodic transfer's line in `orch status` (from orchestrator/dls/dags/_periodic.summary, or
    {"error": ...} when the service does not answer)."""
    if "error" in summary:
        return f"unknown: {summary['error']}"
    if not summary.get("present"):
        return "not on the data logistics service"
    last = summary.get("last_run")
    parts = [f"last run {last['state']} at {last['at']}" if last else "no run yet",
             "paused" if summary.get("paused") else f"next run {summary.get('next_run') or 'not planned'}",
             f"{summary.get('succeeded', 0)} succeeded", f"{summary.get('failed', 0)} failed"]
    return ", ".join(parts)
