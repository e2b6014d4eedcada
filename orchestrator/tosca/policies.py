"""Groups and policies of a topology: their types, members, targets, properties and triggers."""

from __future__ import annotations

from typing import Any

from orchestrator.model import Problem
from orchestrator.tosca.build import value_kind_problem
from orchestrator.tosca.inputs import coerce
from orchestrator.tosca.types import TypeRegistry


def group_problems(raw: Any, nodes: set[str], file_name: str) -> list[Problem]:
    problems: list[Problem] = []
    for name, group in raw.items() if isinstance(raw, dict) else ():
        members = group.get("members") if isinstance(group, dict) else None
        if members is None:
            continue
        if not isinstance(members, list):
            problems.append(Problem(file_name, f"topology_template.groups.{name}.members", "must be a list of nodes"))
            continue
        problems += [Problem(file_name, f"topology_template.groups.{name}.members", f"unknown node '{member}'")
                     for member in members if not isinstance(member, str) or member not in nodes]
    return problems


def policy_problems(raw: Any, registry: TypeRegistry, nodes: set[str], groups: set[str],
                     file_name: str) -> list[Problem]:
    """Types, targets and properties of policies (a list of one-key mappings in TOSCA 1.3). Property
    values are never shown: only their kind is wrong."""
    if raw is None:
        return []
    entries = list(raw.items()) if isinstance(raw, dict) else None
    if isinstance(raw, list):
        entries = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or len(entry) != 1:
                return [Problem(file_name, f"topology_template.policies[{i}]",
                                "must be a one-key mapping 'name: policy'")]
            entries.append(next(iter(entry.items())))
    if entries is None:
        return [Problem(file_name, "topology_template.policies", "must be a list of policies")]
    problems: list[Problem] = []
    for i, (name, policy) in enumerate(entries):
        where = (f"topology_template.policies[{i}].{name}" if isinstance(raw, list)
                 else f"topology_template.policies.{name}")
        if not isinstance(policy, dict) or not isinstance(policy.get("type"), str):
            problems.append(Problem(file_name, where, "needs a 'type'"))
            continue
        type_name = registry.full_name(policy["type"], "policy_types")
        if not registry.knows(type_name) and registry.knows("tosca.policies." + policy["type"]):
            type_name = "tosca.policies." + policy["type"]
        if not registry.knows(type_name):
            problems.append(Problem(file_name, f"{where}.type", f"unknown policy type '{policy['type']}'"))
            continue
        targets = policy.get("targets")
        if targets is not None and not isinstance(targets, list):
            problems.append(Problem(file_name, f"{where}.targets", "must be a list of nodes or groups"))
        for target in targets if isinstance(targets, list) else ():
            if not isinstance(target, str) or (target not in nodes and target not in groups):
                problems.append(Problem(file_name, f"{where}.targets", f"targets unknown node '{target}'"))
        problems += _trigger_problems(policy.get("triggers"), file_name, f"{where}.triggers")
        properties = policy.get("properties")
        if properties is None:
            continue
        if not isinstance(properties, dict):
            problems.append(Problem(file_name, f"{where}.properties", "must be a mapping"))
            continue
        declared = registry.merged_section(type_name, "properties")
        for prop, value in properties.items():
            definition = declared.get(prop)
            if definition is None:
                problems.append(Problem(file_name, f"{where}.properties",
                                        f"contains unknown field \"{prop}\" (policy type '{type_name}')"))
            elif isinstance(definition, dict):
                kind = value_kind_problem(value, definition.get("type"))
                if kind:
                    problems.append(Problem(file_name, f"{where}.properties.{prop}", kind))
    return problems


TRIGGER_CONDITION_KEYS = {"constraint", "period", "evaluations", "method",
                          # tosca-parser's keys from drafts before 1.3, which it checks itself
                          "granularity", "aggregation_method", "threshold", "comparison_operator",
                          "resource_type", "state"}


def _trigger_problems(raw: Any, file_name: str, where: str) -> list[Problem]:
    """A trigger's condition (TOSCA 1.3, trigger definition): its keys, `period` a scalar-unit.time,
    `evaluations` a whole number, `method` a string. tosca-parser checks the rest of the trigger."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Problem(file_name, where, "must be a mapping of triggers")]
    problems: list[Problem] = []
    for name, trigger in raw.items():
        condition = trigger.get("condition") if isinstance(trigger, dict) else None
        place = f"{where}.{name}.condition"
        if condition is None:
            continue
        if not isinstance(condition, dict):
            problems.append(Problem(file_name, place,
                                    "must be a mapping (constraint, period, evaluations, method)"))
            continue
        unknown = sorted(map(str, set(condition) - TRIGGER_CONDITION_KEYS))
        if unknown:
            problems.append(Problem(file_name, place, f"unknown key{'s' if len(unknown) > 1 else ''} "
                                    f"{', '.join(unknown)} (a condition has constraint, period, evaluations, "
                                    "method)"))
        if "period" in condition and coerce(condition["period"], "scalar-unit.time")[1]:
            problems.append(Problem(file_name, f"{place}.period", "must be a time, such as 60 s"))
        evaluations = condition.get("evaluations")
        if evaluations is not None and (not isinstance(evaluations, int) or isinstance(evaluations, bool)
                                        or evaluations < 1):
            problems.append(Problem(file_name, f"{place}.evaluations", "must be a whole number (1 or more)"))
        if "method" in condition and not isinstance(condition["method"], str):
            problems.append(Problem(file_name, f"{place}.method", "must be a string (average, minimum, ...)"))
    return problems


def policies_of(raw: Any) -> dict[str, Any]:
    if isinstance(raw, list):
        merged: dict[str, Any] = {}
        for entry in raw:
            if isinstance(entry, dict):
                merged.update(entry)
        return merged
    return raw if isinstance(raw, dict) else {}
