"""Requirements fulfilled by matching (TOSCA 1.3, requirement assignment): a requirement that names a node
type, a capability type or a node_filter instead of a node template is fulfilled by the one node template
of the topology that matches; none or several is a problem that names the candidates. orch deploys only the
topology's own nodes, so there is nowhere else to look."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.functions import as_function
from orchestrator.tosca.inputs import check_constraints
from orchestrator.tosca.types import TypeRegistry

UNBOUNDED = "UNBOUNDED"


@dataclass(frozen=True)
class Wanted:
    """What a requirement asks of its target: all given criteria must hold."""

    node_type: str | None = None  # a node type name (the template's, or the definition's)
    capability: str | None = None  # a capability type, or the name of a capability of the target
    node_filter: Mapping[str, Any] | None = None

    def describe(self) -> str:
        parts = [f"of type {self.node_type}"] if self.node_type else []
        parts += [f"with a capability {self.capability}"] if self.capability else []
        parts += ["matching its node_filter"] if self.node_filter else []
        return " and ".join(parts) or "of any type"


class Matcher:
    """The node templates of one topology, as candidates for requirements."""

    def __init__(self, registry: TypeRegistry, raw_nodes: Mapping[str, Any], input_values: Mapping[str, Any]):
        self.registry = registry
        self.raw_nodes = raw_nodes
        self.input_values = input_values

    def node_type(self, name: str) -> str | None:
        raw = self.raw_nodes.get(name)
        type_name = raw.get("type") if isinstance(raw, dict) else None
        return type_name if isinstance(type_name, str) and self.registry.knows(type_name) else None

    def candidates(self, source: str, wanted: Wanted) -> list[str]:
        return [name for name in self.raw_nodes if name != source and self.matches(name, wanted)]

    def matches(self, name: str, wanted: Wanted) -> bool:
        type_name = self.node_type(name)
        if type_name is None:
            return False
        if wanted.node_type and wanted.node_type not in self.registry.lineage(type_name):
            return False
        if wanted.capability and self.capability_named(name, wanted.capability) is None:
            return False
        return not wanted.node_filter or self.filter_holds(name, wanted.node_filter)

    def capability_named(self, name: str, capability: str) -> str | None:
        """The capability of node `name` that `capability` means: its own name, or the first whose type
        is that capability type or derives from it."""
        type_name = self.node_type(name)
        definitions = self.registry.merged_section(type_name, "capabilities") if type_name else {}
        if capability in definitions:
            return capability
        for cap_name, definition in definitions.items():
            cap_type = definition.get("type") if isinstance(definition, dict) else definition
            if isinstance(cap_type, str) and capability in self.registry.lineage(cap_type):
                return cap_name
        return None

    def filter_holds(self, name: str, node_filter: Mapping[str, Any]) -> bool:
        """Every property constraint of the filter holds for node `name` (and of the named capabilities).
        A value orch cannot know before deploying (an attribute, an input not given yet) does not exclude
        the node."""
        raw = self.raw_nodes[name]
        type_name = self.node_type(name)
        if type_name is None:
            return False
        values = {**_defaults(self.registry.merged_section(type_name, "properties")),
                  **(raw.get("properties") or {})}
        if not self._clauses_hold(node_filter.get("properties"), values,
                                  self.registry.merged_section(type_name, "properties")):
            return False
        for entry in node_filter.get("capabilities") or []:
            (capability, body), = entry.items()
            cap_name = self.capability_named(name, capability)
            if cap_name is None:
                return False
            definition = self.registry.merged_section(type_name, "capabilities").get(cap_name)
            cap_type = definition.get("type") if isinstance(definition, dict) else definition
            declared = self.registry.merged_section(cap_type, "properties") if isinstance(cap_type, str) else {}
            assigned = (raw.get("capabilities") or {}).get(cap_name)
            assigned = assigned.get("properties") if isinstance(assigned, dict) else None
            values = {**_defaults(declared), **(assigned if isinstance(assigned, dict) else {})}
            if not self._clauses_hold((body or {}).get("properties") if isinstance(body, dict) else None,
                                      values, declared):
                return False
        return True

    def _clauses_hold(self, clauses: Any, values: Mapping[str, Any], declared: Mapping[str, Any]) -> bool:
        for entry in clauses or []:
            (prop, constraints), = entry.items()
            constraints = constraints if isinstance(constraints, list) else [constraints]
            if not all(isinstance(c, dict) and len(c) == 1 for c in constraints):
                # `prop: value` is short for `prop: {equal: value}`
                constraints = [{"equal": constraints[0]}] if len(constraints) == 1 else []
            value = self._value(values.get(prop))
            if value is _UNKNOWN:
                continue
            definition = declared.get(prop)
            type_name = definition.get("type", "string") if isinstance(definition, dict) else "string"
            if value is None or check_constraints(str(prop), value, tuple(constraints), str(type_name)):
                return False
        return True

    def _value(self, value: Any) -> Any:
        function = as_function(value)
        if function is None:
            return value
        name, args = function
        key = args[0] if isinstance(args, list) and args else args
        if name == "get_input" and isinstance(key, str) and key in self.input_values:
            return self._value(self.input_values[key])
        return _UNKNOWN


_UNKNOWN = object()


def _defaults(definitions: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v["default"] for k, v in definitions.items() if isinstance(v, dict) and "default" in v}


def occurrences(definition: Mapping[str, Any]) -> tuple[int, float]:
    """A requirement definition's [min, max] (TOSCA 1.3's default is [1, 1]); UNBOUNDED is infinity."""
    bounds = definition.get("occurrences")
    if not (isinstance(bounds, list) and len(bounds) == 2):
        return 1, 1
    low, high = bounds
    low = low if isinstance(low, int) and not isinstance(low, bool) else 1
    high = float("inf") if high == UNBOUNDED else (high if isinstance(high, int) and not isinstance(high, bool)
                                                     else 1)
    return low, high
