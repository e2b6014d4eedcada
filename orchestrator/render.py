"""Show a plan: text (waves of steps that may run together), json, Graphviz dot, Mermaid."""

from __future__ import annotations

import json

import networkx as nx

from orchestrator.model import Step


def waves(graph: nx.DiGraph) -> list[list[Step]]:
    return [sorted((graph.nodes[n]["step"] for n in generation), key=lambda s: s.id)
            for generation in nx.topological_generations(graph)]


def _label(step: Step) -> str:
    if step.operation:
        return f"{step.id}" if step.is_relationship else f"{step.node} {step.operation}"
    return f"{step.node} set_state {step.state}"


def as_text(graph: nx.DiGraph, implemented: set[str] | None = None) -> str:
    lines = []
    for number, wave in enumerate(waves(graph), start=1):
        lines.append(f"wave {number}:")
        for step in wave:
            marker = "" if implemented is None or step.id in implemented else "  (no-op)"
            lines.append(f"  {_label(step)}{marker}")
    return "\n".join(lines)


def as_json(graph: nx.DiGraph) -> str:
    steps = [{"id": s.id, "node": s.node, "operation": s.operation, "state": s.state, "side": s.side,
              "after": sorted(graph.predecessors(s.id))} for wave in waves(graph) for s in wave]
    return json.dumps({"steps": steps}, indent=2)


def _dot_quote(text: str) -> str:
    """Graphviz strings: only backslash and double quote need escaping; UTF-8 stays as it is."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def as_dot(graph: nx.DiGraph) -> str:
    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for step_id in sorted(graph.nodes):
        lines.append(f"  {_dot_quote(step_id)} [label={_dot_quote(_label(graph.nodes[step_id]['step']))}];")
    for a, b in sorted(graph.edges):
        lines.append(f"  {_dot_quote(a)} -> {_dot_quote(b)};")
    lines.append("}")
    return "\n".join(lines)


def as_mermaid(graph: nx.DiGraph) -> str:
    ids = {step_id: f"s{i}" for i, step_id in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    for step_id, short in ids.items():
        label = _label(graph.nodes[step_id]["step"]).replace('"', "'")
        lines.append(f'  {short}["{label}"]')
    for a, b in sorted(graph.edges):
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines)


RENDERERS = {"text": as_text, "json": as_json, "dot": as_dot, "mermaid": as_mermaid}
