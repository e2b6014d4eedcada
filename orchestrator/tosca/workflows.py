"""TOSCA 1.3 imperative workflows (`topology_template.workflows`), which tosca-parser rejects:
taken out before parsing and read here, with every problem named by workflow and step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx

from orchestrator.model import Activity, NodeTemplate, Problem, Workflow, WorkflowStep
from orchestrator.tosca.inputs import DataTypeBase, check_constraints, coerce, parse_input_definitions

ACTIVITY_KINDS = ("set_state", "call_operation", "delegate", "inline")
RESERVED = ("install", "uninstall")
# TOSCA's node states, then the states of a job (a Runnable node) that orch's workflows set
STATES = ("initial", "creating", "created", "configuring", "configured", "starting", "started", "stopping",
          "stopped", "deleting", "deleted", "error", "available",
          "submitting", "submitted", "pending", "running", "executing", "executed", "failed", "cancelling",
          "cancelled")


def parse_workflows(raw: Any, nodes: Mapping[str, NodeTemplate], file_name: str,
                    known_data_type: Callable[[str], bool] | None = None, data_type_base: DataTypeBase | None = None
                    ) -> tuple[dict[str, Workflow], list[Problem]]:
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [Problem(file_name, "topology_template.workflows", "must be a mapping of workflows")]
    problems: list[Problem] = []
    workflows: dict[str, Workflow] = {}
    for name, body in raw.items():
        where = f"topology_template.workflows.{name}"
        if not isinstance(body, dict):
            problems.append(Problem(file_name, where, "must be a mapping with 'steps'"))
            continue
        inputs, input_problems = parse_input_definitions(body.get("inputs"), file_name, f"{where}.inputs",
                                                         known_data_type, data_type_base)
        problems.extend(input_problems)
        for definition in inputs.values():  # a default is a value too: of its type, within its constraints
            if definition.has_default and definition.default is not None:
                value, problem = coerce(definition.default, definition.type)
                failures = [problem] if problem else check_constraints(definition.name, value,
                                                                       definition.constraints, definition.type)
                problems.extend(Problem(file_name, f"{where}.inputs.{definition.name}", f"default: {failure}")
                                for failure in failures)
        steps = _parse_steps(body.get("steps"), nodes, file_name, where, problems)
        workflows[name] = Workflow(name, inputs, steps, str(body.get("description", "")))
    for workflow in workflows.values():
        _check_references(workflow, set(workflows) | set(RESERVED), file_name, problems)
    return workflows, problems


def _parse_steps(raw: Any, nodes: Mapping[str, NodeTemplate], file_name: str, where: str,
                 problems: list[Problem]) -> dict[str, WorkflowStep]:
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem(file_name, f"{where}.steps", "a workflow needs a mapping of steps"))
        return {}
    steps: dict[str, WorkflowStep] = {}
    for step_name, body in raw.items():
        place = f"{where}.steps.{step_name}"
        if not isinstance(body, dict):
            problems.append(Problem(file_name, place, "must be a mapping with target and activities"))
            continue
        target = body.get("target")
        relationship = body.get("target_relationship")
        node = nodes.get(target) if isinstance(target, str) else None
        if node is None:
            problems.append(Problem(file_name, f"{place}.target", f"unknown target node '{target}'"))
        elif relationship is not None and relationship not in {r.name for r in node.requirements}:
            problems.append(Problem(file_name, f"{place}.target_relationship",
                                    f"node '{target}' has no requirement '{relationship}'"))
        activities = _parse_activities(body.get("activities"), node, relationship, file_name, place, problems)
        steps[step_name] = WorkflowStep(
            name=step_name, target=str(target), activities=tuple(activities),
            on_success=_names(body.get("on_success")), on_failure=_names(body.get("on_failure")),
            target_relationship=relationship)
    return steps


def _parse_activities(raw: Any, node: NodeTemplate | None, relationship: str | None, file_name: str,
                      place: str, problems: list[Problem]) -> list[Activity]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(file_name, f"{place}.activities", "a step needs a list of activities"))
        return []
    activities: list[Activity] = []
    for i, entry in enumerate(raw):
        where = f"{place}.activities[{i}]"
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in ACTIVITY_KINDS:
            problems.append(Problem(file_name, where, f"an activity is one of {', '.join(ACTIVITY_KINDS)}"))
            continue
        kind, value = next(iter(entry.items()))
        if isinstance(value, dict):  # TOSCA 1.3 long forms: {operation: ..., inputs: ...} / {workflow: ...}
            value = value.get("operation") or value.get("workflow")
        if not isinstance(value, str):
            problems.append(Problem(file_name, where, f"{kind} needs a name"))
            continue
        if kind == "set_state" and value not in STATES:
            problems.append(Problem(file_name, where, f"unknown state '{value}'; a node's state is one of "
                                    + ", ".join(STATES)))
            continue
        if kind == "call_operation" and node is not None:
            operations = node.operations
            if relationship is not None:
                requirement = next((r for r in node.requirements if r.name == relationship), None)
                if requirement is None:
                    continue  # already reported on target_relationship
                operations = requirement.operations
            short = _short_operation(value)
            if short not in operations:
                problems.append(Problem(file_name, where, f"unknown operation '{value}' on "
                                        f"{'relationship ' + relationship if relationship else 'node ' + node.name}"))
                continue
            value = short
        activities.append(Activity(kind, value))
    return activities


def _short_operation(value: str) -> str:
    interface, _, operation = value.rpartition(".")
    return f"{interface.rsplit('.', 1)[-1]}.{operation}"


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _check_references(workflow: Workflow, workflow_names: set[str], file_name: str, problems: list[Problem]) -> None:
    where = f"topology_template.workflows.{workflow.name}"
    graph = nx.DiGraph()
    graph.add_nodes_from(workflow.steps)
    for step in workflow.steps.values():
        for successor in step.on_success + step.on_failure:
            if successor not in workflow.steps:
                problems.append(Problem(file_name, f"{where}.steps.{step.name}",
                                        f"on_success/on_failure names unknown step '{successor}'"))
            else:
                graph.add_edge(step.name, successor)
        for activity in step.activities:
            if activity.kind in ("delegate", "inline") and activity.value not in workflow_names:
                problems.append(Problem(file_name, f"{where}.steps.{step.name}",
                                        f"{activity.kind} names unknown workflow '{activity.value}'"))
    if nx.is_directed_acyclic_graph(graph):  # linear; find_cycle alone is quadratic on a long chain
        return
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    names = [edge[0] for edge in cycle] + [cycle[0][0]]
    problems.append(Problem(file_name, f"{where}.steps", "step cycle: " + " -> ".join(names)))
