"""Imperative workflows as plans: each workflow step's activities become steps run one after the
other; `on_success` links a step's last activity to the next step's first; `on_failure` links every
activity of a step to a handler step that runs only if that activity fails (edge attribute
when="failure"); `delegate: install|uninstall` expands to the node's Standard chain; `inline`
embeds another workflow."""

from __future__ import annotations

import networkx as nx

from orchestrator.model import Step, StepKind, Topology, Workflow
from orchestrator.plan.lifecycle import NODE_LIFECYCLE, NODE_TEARDOWN, install_plan, uninstall_plan

DECLARATIVE = {"install": install_plan, "uninstall": uninstall_plan}
FAILURE = "failure"


class WorkflowError(Exception):
    pass


def custom_workflows(topology: Topology) -> list[str]:
    return sorted(name for name in topology.workflows if name not in DECLARATIVE)


def default_workflow(topology: Topology) -> str:
    names = custom_workflows(topology)
    if len(names) == 1:
        return names[0]
    if not names:
        raise WorkflowError("this topology has no workflow to run (only install/uninstall)")
    raise WorkflowError(f"this topology has several workflows; choose one with --workflow: {', '.join(names)}")


def workflow_plan(topology: Topology, name: str) -> nx.DiGraph:
    if name in DECLARATIVE and name not in topology.workflows:
        return DECLARATIVE[name](topology)
    if name not in topology.workflows:
        raise WorkflowError(f"no workflow named '{name}'; this topology has: "
                            f"{', '.join(custom_workflows(topology)) or 'none'}")
    graph = nx.DiGraph()
    _add_workflow(graph, topology, topology.workflows[name], prefix="", seen=(name,))
    return graph


def _add_workflow(graph: nx.DiGraph, topology: Topology, workflow: Workflow, prefix: str,
                  seen: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """Add a workflow's steps; return (entry ids, exit ids, every id) for embedding it elsewhere."""
    firsts: dict[str, list[str]] = {}
    lasts: dict[str, list[str]] = {}
    members: dict[str, list[str]] = {}
    for step in workflow.steps.values():
        entry: list[str] = []
        frontier: list[str] = []  # what the next activity waits for
        added: list[str] = []
        for index, activity in enumerate(step.activities):
            step_prefix = f"{prefix}{step.name}#{index}"
            if activity.kind in ("delegate", "inline") and activity.value in DECLARATIVE:
                ids = _add_node_chain(graph, step.target, activity.value, step_prefix, step.name)
                heads, tails = ids[:1], ids[-1:]
            elif activity.kind in ("delegate", "inline"):
                if activity.value in seen:
                    raise WorkflowError(f"workflow '{activity.value}' inlines itself")
                heads, tails, ids = _add_workflow(graph, topology, topology.workflows[activity.value],
                                                  f"{step_prefix}/", (*seen, activity.value))
            else:
                ids = [_add_activity(graph, topology, step, activity.kind, activity.value, step_prefix)]
                heads = tails = ids
            for before in frontier:
                for head in heads:
                    graph.add_edge(before, head)
            entry = entry or heads
            frontier = tails
            added += ids
        firsts[step.name], lasts[step.name], members[step.name] = entry, frontier, added
    targets = {t for w in workflow.steps.values() for t in w.on_success + w.on_failure}
    for step in workflow.steps.values():
        for successor in step.on_success:
            for last in lasts[step.name]:
                for first in firsts.get(successor, []):
                    graph.add_edge(last, first)
        for handler in step.on_failure:
            for member in members[step.name]:
                for first in firsts.get(handler, []):
                    graph.add_edge(member, first, when=FAILURE)
    entries = [i for name, ids in firsts.items() if name not in targets for i in ids]
    exits = [i for name, ids in lasts.items() if not workflow.steps[name].on_success for i in ids]
    return entries, exits, [i for ids in members.values() for i in ids]


def _add_activity(graph: nx.DiGraph, topology: Topology, step, kind: str, value: str, step_id: str) -> str:
    requirement = None
    if step.target_relationship is not None:
        requirement = next(i for i, r in enumerate(topology.nodes[step.target].requirements)
                           if r.name == step.target_relationship)
    if kind == "set_state":
        planned = Step(step_id, step.target, kind=StepKind.SET_STATE, state=value, workflow_step=step.name)
    else:
        planned = Step(step_id, step.target, operation=value, requirement=requirement,
                       side="source" if requirement is not None else None, workflow_step=step.name)
    graph.add_node(planned.id, step=planned)
    return planned.id


def _add_node_chain(graph: nx.DiGraph, node: str, which: str, step_prefix: str, workflow_step: str) -> list[str]:
    lifecycle = NODE_LIFECYCLE if which == "install" else NODE_TEARDOWN
    ids: list[str] = []
    for operation, running, done in lifecycle:
        planned = Step(f"{step_prefix}.{operation}", node, operation=f"Standard.{operation}", state=done,
                       running_state=running, workflow_step=workflow_step)
        graph.add_node(planned.id, step=planned)
        if ids:
            graph.add_edge(ids[-1], planned.id)
        ids.append(planned.id)
    return ids
