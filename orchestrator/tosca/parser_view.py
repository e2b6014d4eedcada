"""The template as tosca-parser should see it: one self-contained document (imports merged in, nothing to
fetch), without what orch reads itself (workflows, orch's operation keys), in the forms tosca-parser
understands. tosca-parser validates this copy; orch never reads it back."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.model import NodeTemplate
from orchestrator.tosca.types import INTERFACE_KEYWORDS, TYPE_SECTIONS, TypeRegistry

ORCH_OPERATION_KEYS = ("retries", "retry_delay")
# the types tosca-parser allows an input to have (toscaparser.elements.constraints.Schema.PROPERTY_TYPES)
PARSER_INPUT_TYPES = {"integer", "string", "boolean", "float", "range", "number", "timestamp", "list", "map",
                      "scalar-unit.size", "scalar-unit.frequency", "scalar-unit.time", "version", "PortDef",
                      "PortSpec"}


def _full_interface_type(interface: Any, interface_types: set[str]) -> Any:
    if isinstance(interface, dict) and isinstance(interface.get("type"), str) and "." not in interface["type"]:
        full = [t for t in interface_types if t.rsplit(".", 1)[-1] == interface["type"]]
        if len(full) == 1:
            return {**interface, "type": full[0]}
    return interface


def parser_view(document: Mapping[str, Any], topology_raw: Mapping[str, Any], imported: list,
                workflow_inputs_raw: Mapping[str, Any], registry: TypeRegistry,
                nodes: Mapping[str, NodeTemplate] | None = None) -> dict[str, Any]:
    """The template as tosca-parser should see it: no workflows, imports merged in, nothing to fetch.
    A deep copy, because tosca-parser replaces function dicts with objects in place."""
    checked: dict[str, Any] = {k: v for k, v in document.items() if k not in ("imports", "topology_template")}
    for section in TYPE_SECTIONS:
        merged: dict[str, Any] = {}
        for f in imported:
            merged.update(f.document.get(section) or {})
        merged.update(document.get(section) or {})
        if merged:
            checked[section] = merged
    # tosca-parser knows only its own short interface type names (Standard, Configure)
    interface_types = set(checked.get("interface_types") or {})
    for section in ("node_types", "relationship_types"):
        for definition in (checked.get(section) or {}).values():
            if isinstance(definition, dict) and isinstance(definition.get("interfaces"), dict):
                definition["interfaces"] = {
                    name: _full_interface_type(iface, interface_types)
                    for name, iface in definition["interfaces"].items()}
    _long_forms(checked.get("node_types"))
    checked["topology_template"] = dict(topology_raw)
    # Workflow inputs may be read with get_input in node templates (at run time they are given with
    # `orch run`); tosca-parser only knows topology inputs, so it is told of them as optional ones.
    workflow_inputs = {name: {"type": "string", **{k: v for k, v in (spec or {}).items() if k != "default"},
                              "required": False}
                       for name, spec in workflow_inputs_raw.items() if isinstance(spec, dict) or spec is None}
    topology_inputs = topology_raw.get("inputs") if isinstance(topology_raw.get("inputs"), dict) else {}
    if workflow_inputs:
        checked["topology_template"]["inputs"] = {**workflow_inputs, **topology_inputs}
    checked = copy.deepcopy(checked)
    _drop_orch_operation_keys(checked["topology_template"])
    _input_types_for_parser(checked["topology_template"].get("inputs"), registry)
    _targets_named(checked["topology_template"].get("node_templates"), nodes or {})
    relationships = checked["topology_template"].get("relationship_templates")
    node_templates = checked["topology_template"].get("node_templates")
    if isinstance(relationships, dict) and relationships:
        named = set(relationships) - set(node_templates if isinstance(node_templates, dict) else ())
        _relationship_calls_hidden(checked, named)
    return checked


def _relationship_calls_hidden(value: Any, relationships: set[str]) -> Any:
    """get_property and get_attribute naming a relationship template, which tosca-parser looks for among the
    node templates ('Node template "x" was not found'), replaced by a call it leaves alone; orch checks them
    (tosca/relationships.py). In place, in the deep copy."""
    if isinstance(value, dict):
        if len(value) == 1:
            (name, args), = value.items()
            if name in ("get_property", "get_attribute") and isinstance(args, list) and args \
                    and isinstance(args[0], str) and args[0] in relationships:
                return {"concat": [args[0]]}
        for key, item in value.items():
            value[key] = _relationship_calls_hidden(item, relationships)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _relationship_calls_hidden(item, relationships)
    return value


def _targets_named(templates: Any, nodes: Mapping[str, NodeTemplate]) -> None:
    """Each requirement names the node template orch found for it (tosca-parser cannot match by node type,
    capability or node_filter: 'Lookup by TOSCA types is not supported'). Only for a template orch built
    without problems, whose requirements are then one to one with the template's list."""
    for name, template in templates.items() if isinstance(templates, dict) else ():
        requirements = template.get("requirements") if isinstance(template, dict) else None
        built = nodes.get(name)
        if built is None or not isinstance(requirements, list) or len(requirements) != len(built.requirements):
            continue
        for entry, requirement in zip(requirements, built.requirements, strict=True):
            (req_name, value), = entry.items()
            if isinstance(value, dict):
                value["node"] = requirement.target
            else:
                entry[req_name] = requirement.target


def _long_forms(node_types: Any) -> None:
    """Capability and requirement definitions in their short forms (`name: capability type`, TOSCA 1.3),
    on which tosca-parser crashes ('str' object has no attribute 'get'), written out. In the merged
    sections, which are fresh mappings; the definitions in them are replaced, not changed."""
    for name, definition in list(node_types.items()) if isinstance(node_types, dict) else ():
        if not isinstance(definition, dict):
            continue
        capabilities = definition.get("capabilities")
        requirements = definition.get("requirements")
        if isinstance(capabilities, dict) and any(isinstance(c, str) for c in capabilities.values()):
            definition = {**definition, "capabilities": {k: {"type": c} if isinstance(c, str) else c
                                                         for k, c in capabilities.items()}}
        if isinstance(requirements, list) and any(isinstance(r, dict) and any(isinstance(v, str) for v in r.values())
                                                  for r in requirements):
            definition = {**definition, "requirements": [
                {k: {"capability": v} if isinstance(v, str) else v for k, v in r.items()} if isinstance(r, dict) else r
                for r in requirements]}
        node_types[name] = definition


def _input_types_for_parser(inputs: Any, registry: TypeRegistry) -> None:
    """tosca-parser refuses an input of any data type but PortDef and PortSpec ('Invalid type'), and of
    scalar-unit.bitrate. orch checks those inputs (tosca/inputs.py), so tosca-parser is shown the primitive
    a data type derives from, a map for a complex data type, a string for a bitrate."""
    for spec in inputs.values() if isinstance(inputs, dict) else ():
        type_name = spec.get("type") if isinstance(spec, dict) else None
        if not isinstance(type_name, str) or type_name in PARSER_INPUT_TYPES:
            continue
        if type_name == "scalar-unit.bitrate":
            spec["type"] = "string"
            continue
        base, _constraints = registry.data_type_base(type_name)
        spec["type"] = base if base in PARSER_INPUT_TYPES else ("string" if base else "map")


def _drop_orch_operation_keys(topology: dict[str, Any]) -> None:
    """`retries` and `retry_delay` on an operation are orch's (build.py reads and checks them); tosca-parser
    refuses any key but implementation/inputs/outputs in a template's operation (it does not look at a type's)."""
    for interfaces in _template_interfaces(topology):
        for interface in interfaces.values():
            for operation in _assigned_operations(interface):
                for key in ORCH_OPERATION_KEYS:
                    operation.pop(key, None)


def _template_interfaces(topology: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The `interfaces` of every node template, relationship template and requirement's own relationship."""
    templates = list(_values(topology.get("relationship_templates")))
    for node in _values(topology.get("node_templates")):
        templates.append(node)
        requirements = node.get("requirements") if isinstance(node, dict) else None
        for requirement in requirements if isinstance(requirements, list) else ():
            templates += [value.get("relationship") for value in _values(requirement) if isinstance(value, dict)]
    for template in templates:
        if isinstance(template, dict) and isinstance(template.get("interfaces"), dict):
            yield template["interfaces"]


def _assigned_operations(interface: Any) -> list[dict[str, Any]]:
    """An interface assignment's operations written as mappings, TOSCA 1.2 style or under `operations:`."""
    if not isinstance(interface, dict):
        return []
    found = [op for name, op in interface.items() if name not in INTERFACE_KEYWORDS and name != "operations"]
    found += _values(interface.get("operations"))
    return [op for op in found if isinstance(op, dict)]


def _values(mapping: Any) -> list[Any]:
    return list(mapping.values()) if isinstance(mapping, dict) else []
