"""Relationship templates and what names them: the model's RelationshipTemplate built from the topology's
`relationship_templates`, get_property/get_attribute naming a relationship template (or SELF in a relationship's
operation, which TOSCA makes the relationship), and the attribute mappings of operation outputs (TOSCA 1.3:
`outputs: {name: [SELF, attribute]}`). A part of NodeBuilder (tosca/build.py), whose problem reporter, type
registry and function checks it uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.model import RelationshipTemplate, relationship_key

# what an attribute mapping may name besides node and relationship templates
MAPPING_ENTITIES = ("SELF", "SOURCE", "TARGET")
# readable with get_attribute on any entity (tosca.nodes.Root and tosca.relationships.Root declare them)
IMPLICIT_ATTRIBUTES = ("tosca_id", "tosca_name", "state")
MAPPING_FORM = ("an attribute mapping is [entity, attribute], the entity SELF, SOURCE, TARGET, a node template "
                "or a relationship template")


@dataclass(frozen=True)
class Relationship:
    """A relationship as the load-time checks see it: its type, what its template assigns, and, in the
    operations of a requirement's relationship, its two ends (None for a relationship template's own values)."""

    type: str
    properties: Mapping[str, Any]
    attributes: Mapping[str, Any]
    label: str  # how a problem names it
    source: str | None = None
    target: str | None = None


class RelationshipBuilder:
    """The relationship half of NodeBuilder (which sets registry, relationship_templates, raw_nodes, node_names,
    current_node, problem, defaults and check_functions)."""

    current_relationship: Relationship | None = None  # SELF while a relationship's values are checked
    _uses: dict[str, list[str]] | None = None  # relationship_uses, once the node templates are known

    def build_relationship_templates(self) -> dict[str, RelationshipTemplate]:
        """The topology's relationship templates whose type is known (tosca-parser names the others)."""
        result: dict[str, RelationshipTemplate] = {}
        for name, raw in self.relationship_templates.items():
            relationship = self.named_relationship(name)
            if relationship is None:
                continue
            place = f"relationship_templates.{name}"
            self.current_relationship = relationship
            try:
                self.check_functions(raw.get("properties"), f"{place}.properties", True)
                self.check_functions(raw.get("attributes"), f"{place}.attributes", True)
            finally:
                self.current_relationship = None
            properties = self.defaults(relationship.type, "properties")
            properties.update(relationship.properties)
            result[name] = RelationshipTemplate(name, relationship.type, self.registry.lineage(relationship.type),
                                                properties, self.declared_attributes(relationship.type,
                                                                                     relationship.attributes))
        return result

    def named_relationship(self, name: Any) -> Relationship | None:
        """The relationship template of that name, if the topology has one of a known type."""
        raw = self.relationship_templates.get(name) if isinstance(name, str) else None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return None
        type_name = self.registry.full_name(raw["type"], "relationship_types")
        if not self.registry.knows(type_name):
            return None
        return Relationship(type_name, _mapping(raw.get("properties")), _mapping(raw.get("attributes")),
                            f"relationship template '{name}'")

    def declared_attributes(self, type_name: str, assigned: Mapping[str, Any]) -> dict[str, Any]:
        """Every attribute the type declares (None when it has no default: a fact or a mapping sets it), then
        the template's own assignments."""
        attributes = {k: (v.get("default") if isinstance(v, dict) else None)
                      for k, v in self.registry.merged_section(type_name, "attributes").items()}
        attributes.update(assigned)
        return attributes

    def relationship_uses(self, name: str) -> list[str]:
        """The requirements (as `node.requirements[i]`) whose relationship is the template of that name."""
        if self._uses is None:  # once per load: thousands of operations may name a template
            self._uses = {}
            for node, raw in self.raw_nodes.items():
                requirements = raw.get("requirements") if isinstance(raw, dict) else None
                for i, entry in enumerate(requirements if isinstance(requirements, list) else ()):
                    value = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
                    named = value.get("relationship") if isinstance(value, dict) else None
                    if isinstance(named, str) and named in self.relationship_templates:
                        self._uses.setdefault(named, []).append(relationship_key(node, i))
        return self._uses.get(name, [])

    def relationship_named_by(self, entity: Any, in_relationship: bool) -> Relationship | None:
        """The relationship a function's first argument names: SELF in a relationship's operation or values,
        or a relationship template that is not also a node template's name."""
        if entity == "SELF" and in_relationship:
            return self.current_relationship
        if isinstance(entity, str) and entity not in self.node_names:
            return self.named_relationship(entity)
        return None

    def relationship_reference(self, name: str, args: list[Any], in_relationship: bool) -> str | None:
        """Why a get_property or get_attribute naming a relationship cannot be honoured (None: it can, or it
        names no relationship)."""
        relationship = self.relationship_named_by(args[0], in_relationship)
        if relationship is None or name not in ("get_property", "get_attribute"):
            return None
        properties = set(self.registry.merged_section(relationship.type, "properties")) | set(relationship.properties)
        if name == "get_property":
            if args[1] in properties:
                return None
            return f"get_property: {relationship.label} has no property '{args[1]}'" + _listed(properties)
        if args[0] != "SELF":
            uses = self.relationship_uses(args[0])
            if len(uses) > 1:
                return (f"get_attribute: {relationship.label} is the relationship of several requirements "
                        f"({', '.join(uses)}), each with its own attributes: read them through SELF in the "
                        "relationship's operations, or give each requirement its own template")
        attributes = set(self.declared_attributes(relationship.type, relationship.attributes))
        if args[1] in attributes | properties | set(IMPLICIT_ATTRIBUTES):
            return None
        return f"get_attribute: {relationship.label} has no attribute '{args[1]}'" + _listed(attributes | properties)

    def output_reference(self, name: str, args: Any) -> str | None:
        """relationship_reference for a topology output, where no relationship is SELF."""
        if not isinstance(args, list) or len(args) < 2:
            return None
        return self.relationship_reference(name, args, False)

    def attribute_mappings(self, raw: Any, where: str, in_relationship: bool) -> dict[str, tuple[str, str]]:
        """An operation's `outputs`: output name -> (entity, attribute), each checked against the entity it
        names. An output declared without a mapping (a parameter definition) maps nothing."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(f"{where}.outputs", f"must be a mapping of output names to attribute mappings "
                                             f"({MAPPING_FORM})")
            return {}
        result: dict[str, tuple[str, str]] = {}
        for output, value in raw.items():
            place = f"{where}.outputs.{output}"
            if isinstance(value, dict):  # a parameter definition, whose `mapping` (TOSCA 2.0's keyname) maps it
                value = value.get("mapping")
                if value is None:
                    continue
            if not isinstance(value, list) or not all(isinstance(a, str) for a in value) or len(value) < 2:
                self.problem(place, MAPPING_FORM)
                continue
            if len(value) > 2:
                self.problem(place, f"maps onto {'.'.join(value[1:])} of {value[0]}: orch maps an output onto an "
                                    "attribute of the entity itself, [entity, attribute], not onto a capability's "
                                    "attribute or into an attribute's value")
                continue
            entity, attribute = value
            message = self.mapping_problem(entity, attribute, in_relationship)
            if message:
                self.problem(place, message)
                continue
            result[str(output)] = (entity, attribute)
        return result

    def mapping_problem(self, entity: str, attribute: str, in_relationship: bool) -> str | None:
        """Why an attribute mapping cannot be honoured: an entity that is not there, or that has no such
        attribute."""
        if entity in ("SOURCE", "TARGET") and not in_relationship:
            return f"maps onto {entity}, which only means something in a relationship's operations"
        if entity == "HOST" or (entity not in MAPPING_ENTITIES and entity not in self.node_names
                                and entity not in self.relationship_templates):
            return f"maps onto unknown entity '{entity}' ({MAPPING_FORM})"
        relationship = self.relationship_named_by(entity, in_relationship)
        if entity not in MAPPING_ENTITIES and relationship is not None:
            uses = self.relationship_uses(entity)
            if len(uses) != 1:
                joined = f"is the relationship of several requirements ({', '.join(uses)})" if uses \
                    else "is the relationship of no requirement"
                return f"maps onto {relationship.label}, which {joined}: name one relationship (SELF in its operations)"
        if relationship is not None:
            known = set(self.declared_attributes(relationship.type, relationship.attributes))
            label = relationship.label
        else:
            node = self.mapped_node(entity)
            raw = self.raw_nodes.get(node) if node is not None else None
            type_name = self.registry.full_name(raw["type"]) if isinstance(raw, dict) \
                and isinstance(raw.get("type"), str) else None
            if type_name is None or not self.registry.knows(type_name):
                return None  # an unknown type is reported elsewhere
            known = set(self.declared_attributes(type_name, _mapping(raw.get("attributes"))))
            label = f"node '{node}'"
        if attribute in known:
            return None
        return f"maps onto attribute '{attribute}', which {label} does not declare" + _listed(known)

    def mapped_node(self, entity: str) -> str | None:
        """The node template a mapping's entity names (SELF of a node's operation, SOURCE, TARGET, a name)."""
        if entity == "SELF":
            return self.current_node
        if entity in ("SOURCE", "TARGET"):
            relationship = self.current_relationship
            if relationship is None:
                return None
            return relationship.source if entity == "SOURCE" else relationship.target
        return entity


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _listed(names: set[str]) -> str:
    return f" (it has: {', '.join(sorted(map(str, names)))})" if names else ""
