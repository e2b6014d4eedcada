"""Type names as the user may write them, resolved once to the full names every later phase uses.

TOSCA 1.3 gives each normative type three names: `tosca.datatypes.network.PortDef`, the shorthand `PortDef`
and the qualified `tosca:PortDef`. Every reference to a type in the template and its imports (a node
template's type, a property's type, derived_from, a requirement's capability, ...) is rewritten here to the
full name when it is not a type's own name, so that orch's checks, its model and tosca-parser (which knows
only some short forms) all see one name per type. A name that resolves to nothing is left as written, for
the phase that reports unknown types to name it as the user wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from toscaparser.elements.entity_type import EntityType

from orchestrator.tosca.types import INTERFACE_KEYWORDS, NORMATIVE_PREFIXES, TYPE_SECTIONS

PREFIXES = {**NORMATIVE_PREFIXES, "policy_types": "tosca.policies.", "group_types": "tosca.groups."}
QUALIFIER = "tosca:"
# shorthand names that are not the last part of the full name
ALIASES = {"artifact_types": {"Deployment.VM": "tosca.artifacts.Deployment.Image.VM"}}
PRIMITIVES = {"string", "integer", "float", "boolean", "timestamp", "null", "list", "map", "range", "version",
              "scalar-unit.size", "scalar-unit.time", "scalar-unit.frequency", "scalar-unit.bitrate"}
_SCHEMA_KEYS = ("entry_schema", "key_schema")
# the keywords of a property, attribute or parameter definition (a mapping of other keys is a value)
_DEFINITION_KEYS = {"type", "description", "value", "required", "default", "status", "constraints",
                    "key_schema", "entry_schema", "metadata", "external-schema"}


class TypeNames:
    """The full names of the types of each section, and what a short or qualified name stands for."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]):
        self.known: dict[str, set[str]] = {section: set() for section in PREFIXES}
        for name in EntityType.TOSCA_DEF:
            for section, prefix in PREFIXES.items():
                if name.startswith(prefix):
                    self.known[section].add(name)
        for document in documents:
            for section in TYPE_SECTIONS:
                types = document.get(section)
                if isinstance(types, dict):
                    self.known[section].update(k for k in types if isinstance(k, str))
        # the last part of each normative name: PortDef, Bash, Linkable (kept only when one type has it)
        self.last_parts: dict[str, dict[str, str | None]] = {}
        for section, names in self.known.items():
            parts: dict[str, str | None] = {}
            for name in names:
                if name.startswith(PREFIXES[section]):
                    last = name.rsplit(".", 1)[-1]
                    parts[last] = None if last in parts and parts[last] != name else name
            self.last_parts[section] = parts

    def full(self, name: Any, section: str) -> Any:
        """The full name of a type of `section` as written, or the name unchanged."""
        if not isinstance(name, str) or name in PRIMITIVES or name in self.known[section]:
            return name
        short = name.removeprefix(QUALIFIER)
        prefix = PREFIXES[section]
        for candidate in (short, prefix + short, ALIASES.get(section, {}).get(short),
                          self.last_parts[section].get(short)):
            if candidate is not None and candidate in self.known[section]:
                return candidate
        return name


def use_full_names(documents: list[dict[str, Any]], names: TypeNames | None = None) -> None:
    """Rewrite, in place, every type reference of the documents (a template and its imports) to its full
    name. In place because the documents are ours (just read) and a topology may be large; rewriting
    twice changes nothing, so values YAML aliases share are safe."""
    names = names or TypeNames(documents)
    for document in documents:
        for section in TYPE_SECTIONS:
            types = document.get(section)
            for definition in types.values() if isinstance(types, dict) else ():
                if isinstance(definition, dict):
                    _type_definition(definition, section, names)
        topology = document.get("topology_template")
        if isinstance(topology, dict):
            _topology(topology, names)


def _set(mapping: dict, key: str, section: str, names: TypeNames) -> None:
    if key in mapping:
        mapping[key] = names.full(mapping[key], section)


def _set_list(mapping: dict, key: str, section: str, names: TypeNames) -> None:
    if isinstance(mapping.get(key), list):
        mapping[key] = [names.full(item, section) for item in mapping[key]]


def _values(mapping: Any) -> list[dict]:
    return [v for v in mapping.values() if isinstance(v, dict)] if isinstance(mapping, dict) else []


def _parameters(definitions: Any, names: TypeNames) -> None:
    """Property, attribute, input, output and parameter definitions: their type and schemas."""
    for definition in _values(definitions):
        if not set(definition) <= _DEFINITION_KEYS:
            continue  # an operation input's value that happens to be a mapping
        _set(definition, "type", "data_types", names)
        for key in _SCHEMA_KEYS:
            schema = definition.get(key)
            if isinstance(schema, str):
                definition[key] = names.full(schema, "data_types")
            elif isinstance(schema, dict):
                _parameters({"schema": schema}, names)


def _interfaces(interfaces: Any, names: TypeNames) -> None:
    for interface in _values(interfaces):
        _set(interface, "type", "interface_types", names)
        _parameters(interface.get("inputs"), names)
        operations = [op for key, op in interface.items()
                      if key not in INTERFACE_KEYWORDS and key != "operations"]
        operations += _values(interface.get("operations"))
        for operation in operations:
            if isinstance(operation, dict):
                _parameters(operation.get("inputs"), names)
                _artifact(operation.get("implementation"), names)


def _artifact(artifact: Any, names: TypeNames) -> None:
    """An artifact definition, or an implementation whose primary and dependencies may be ones."""
    if not isinstance(artifact, dict):
        return
    _set(artifact, "type", "artifact_types", names)
    _artifact(artifact.get("primary"), names)
    for dependency in artifact.get("dependencies") if isinstance(artifact.get("dependencies"), list) else ():
        _artifact(dependency, names)


def _type_definition(definition: dict, section: str, names: TypeNames) -> None:
    _set(definition, "derived_from", section, names)
    if section == "interface_types":
        _interfaces({"definition": definition}, names)
    _parameters(definition.get("properties"), names)
    _parameters(definition.get("attributes"), names)
    _interfaces(definition.get("interfaces"), names)
    for artifact in _values(definition.get("artifacts")):
        _artifact(artifact, names)
    capabilities = definition.get("capabilities")
    for name, capability in list(capabilities.items()) if isinstance(capabilities, dict) else ():
        if isinstance(capability, str):
            capabilities[name] = names.full(capability, "capability_types")
        elif isinstance(capability, dict):
            _set(capability, "type", "capability_types", names)
            _set_list(capability, "valid_source_types", "node_types", names)
            _parameters(capability.get("properties"), names)
            _parameters(capability.get("attributes"), names)
    requirements = definition.get("requirements")
    for entry in requirements if isinstance(requirements, list) else ():
        for req_name, requirement in list(entry.items()) if isinstance(entry, dict) else ():
            if isinstance(requirement, str):  # the short form: a capability type
                entry[req_name] = names.full(requirement, "capability_types")
            elif isinstance(requirement, dict):
                _set(requirement, "capability", "capability_types", names)
                _set(requirement, "node", "node_types", names)
                _relationship(requirement, names)
    if section == "relationship_types":
        _set_list(definition, "valid_target_types", "capability_types", names)
    if section == "capability_types":
        _set_list(definition, "valid_source_types", "node_types", names)
    if section == "group_types":
        _set_list(definition, "members", "node_types", names)
    if section == "policy_types":
        targets = definition.get("targets")
        if isinstance(targets, list):
            definition["targets"] = [names.full(names.full(t, "node_types"), "group_types") for t in targets]


def _relationship(requirement: dict, names: TypeNames, templates: Mapping[str, Any] | None = None) -> None:
    relationship = requirement.get("relationship")
    if isinstance(relationship, str) and (templates is None or relationship not in templates):
        requirement["relationship"] = names.full(relationship, "relationship_types")
    elif isinstance(relationship, dict):
        _set(relationship, "type", "relationship_types", names)
        _interfaces(relationship.get("interfaces"), names)


def _topology(topology: dict, names: TypeNames) -> None:
    _parameters(topology.get("inputs"), names)
    _parameters(topology.get("outputs"), names)
    nodes = topology.get("node_templates") if isinstance(topology.get("node_templates"), dict) else {}
    relationships = topology.get("relationship_templates")
    relationships = relationships if isinstance(relationships, dict) else {}
    for template in _values(nodes):
        _set(template, "type", "node_types", names)
        _interfaces(template.get("interfaces"), names)
        for artifact in _values(template.get("artifacts")):
            _artifact(artifact, names)
        requirements = template.get("requirements")
        for entry in requirements if isinstance(requirements, list) else ():
            for requirement in _values(entry):
                # `node` and `capability` name a template (or a capability) when one has that name
                if requirement.get("node") not in nodes:
                    _set(requirement, "node", "node_types", names)
                capability = requirement.get("capability")
                if isinstance(capability, str) and names.full(capability, "capability_types") != capability:
                    requirement["capability"] = names.full(capability, "capability_types")
                _relationship(requirement, names, relationships)
    for template in _values(relationships):
        _set(template, "type", "relationship_types", names)
        _interfaces(template.get("interfaces"), names)
    for group in _values(topology.get("groups")):
        _set(group, "type", "group_types", names)
    policies = topology.get("policies")
    entries = [p for entry in policies if isinstance(entry, dict) for p in _values(entry)] \
        if isinstance(policies, list) else _values(policies)
    for policy in entries:
        _set(policy, "type", "policy_types", names)
    for workflow in _values(topology.get("workflows")):
        _parameters(workflow.get("inputs"), names)
