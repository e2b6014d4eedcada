"""Topology outputs: parameter definitions (TOSCA 1.3) whose `value` is usually a function call."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from orchestrator.model import Problem
from orchestrator.tosca.build import PARAMETER_KEYWORDS, value_kind_problem
from orchestrator.tosca.functions import check_call, iter_functions
from orchestrator.tosca.inputs import is_known_type


def parse_outputs(raw: Any, file_name: str, inputs: set[str], nodes: set[str], problems: list[Problem],
                  known_data_type: Callable[[str], bool] | None = None, relationships: Collection[str] = (),
                  relationship_reference: Callable[[str, Any], str | None] | None = None) -> dict[str, Any]:
    """name -> the value expression, as written. Problems are appended to `problems`. relationships: the
    relationship templates, which get_property and get_attribute may name; relationship_reference: why such
    a call cannot be honoured (None: it can, or it names no relationship template)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(file_name, "topology_template.outputs", "must be a mapping"))
        return {}
    outputs: dict[str, Any] = {}
    for name, body in raw.items():
        where = f"topology_template.outputs.{name}"
        if not isinstance(body, dict) or "value" not in body:
            problems.append(Problem(file_name, where, "needs a 'value'"))
            continue
        unknown = sorted(map(str, set(body) - PARAMETER_KEYWORDS))
        if unknown:
            problems.append(Problem(file_name, where, f"unknown key{'s' if len(unknown) > 1 else ''} "
                                    f"{', '.join(unknown)} (an output has "
                                    f"{', '.join(sorted(PARAMETER_KEYWORDS))})"))
        value = body["value"]
        type_name = body.get("type")
        if type_name is not None:
            if not isinstance(type_name, str) or not is_known_type(type_name, known_data_type):
                problems.append(Problem(file_name, f"{where}.type",
                                        f"unknown type '{type_name}' (a TOSCA type such as string, integer, "
                                        "float, boolean, list, map, or a data type)"))
            else:
                kind = value_kind_problem(value, type_name)
                if kind:
                    problems.append(Problem(file_name, f"{where}.value", kind))
        for _path, fn, args in iter_functions(value):
            message = check_call(fn, args, inputs, nodes, in_relationship=False, relationship_names=relationships) \
                or (relationship_reference(fn, args) if relationship_reference else None)
            if message:
                problems.append(Problem(file_name, f"{where}.value", message))
        outputs[name] = value
    return outputs
