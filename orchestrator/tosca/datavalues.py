"""Values of complex data types (a data type with properties, such as tosca.datatypes.Credential) given as
inputs: a map whose keys are the type's properties, the required ones present, each of its property's kind.
tosca-parser checks such values only where they are written in a template, never an input's value. What is
wrong is named by its place; the value itself is never shown (it may be a secret)."""

from __future__ import annotations

from typing import Any

from orchestrator.functions import as_function
from orchestrator.tosca.build import value_kind_problem
from orchestrator.tosca.inputs import check_constraints, coerce
from orchestrator.tosca.types import IMPLICIT_PARENTS, TypeRegistry

MAX_DEPTH = 20  # data types nest; a loop of them (a type holding itself) must end somewhere


def data_value_problems(value: Any, type_name: str, registry: TypeRegistry, place: str,
                        depth: int = 0) -> list[tuple[str, str]]:
    """(place, message) for each way `value` is not a value of the complex data type `type_name`."""
    if as_function(value) is not None or depth > MAX_DEPTH:
        return []  # evaluated at run time
    if not isinstance(value, dict):
        return [(place, f"expected a map of {type_name}'s properties")]
    declared = registry.merged_section(type_name, "properties")
    found = [(f"{place}.{key}", f"{type_name} has no property '{key}' (it has: {', '.join(sorted(declared))})")
             for key in value if key not in declared]
    for prop, definition in declared.items():
        if not isinstance(definition, dict):
            continue
        if prop not in value:
            if definition.get("required", True) and "default" not in definition:
                found.append((f"{place}.{prop}", f"the required property '{prop}' of {type_name} is missing"))
            continue
        found += _property_problems(value[prop], definition, registry, f"{place}.{prop}", depth)
    return found


def _property_problems(value: Any, definition: dict, registry: TypeRegistry, place: str,
                       depth: int) -> list[tuple[str, str]]:
    type_name = definition.get("type")
    if not isinstance(type_name, str) or value is None or as_function(value) is not None:
        return []
    if type_name in ("list", "map"):
        kind = value_kind_problem(value, type_name)
        if kind:
            return [(place, kind)]
        entry = definition.get("entry_schema")
        entry = entry if isinstance(entry, dict) else {"type": entry} if isinstance(entry, str) else None
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return [p for key, item in items if entry
                for p in _property_problems(item, entry, registry, f"{place}[{key}]", depth + 1)]
    if type_name in IMPLICIT_PARENTS:
        coerced, problem = coerce(value, type_name)
        if problem:
            return [(place, problem)]
        constraints = tuple(c for c in definition.get("constraints") or [] if isinstance(c, dict) and len(c) == 1)
        return [(place, failure) for failure in check_constraints(place.rsplit(".", 1)[-1], coerced, constraints,
                                                                  type_name)]
    if not registry.knows(type_name):
        return []  # reported where the type is defined
    base, constraints = registry.data_type_base(type_name)
    if base is not None:  # PortDef and the like: a primitive under constraints
        return _property_problems(value, {"type": base, "constraints": list(constraints)}, registry, place, depth)
    return data_value_problems(value, type_name, registry, place, depth + 1)
