"""A node template's requirements: each one's target (named, or found by matching), its relationship and
that relationship's operations, the occurrences the type allows, and cycles over ordering relationships.
A part of NodeBuilder (tosca/build.py), whose problem reporter, type registry and operations it uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from orchestrator.model import NodeTemplate, Requirement
from orchestrator.tosca.matching import Wanted, occurrences
from orchestrator.tosca.relationships import Relationship

DEFAULT_RELATIONSHIP = "tosca.relationships.DependsOn"
# the relationships that order their ends (TOSCA 1.3's declarative workflows); a cycle over them is an error
ORDERING_RELATIONSHIPS = ("tosca.relationships.HostedOn", "tosca.relationships.DependsOn",
                          "tosca.relationships.ConnectsTo")


class RequirementBuilder:
    """The requirement half of NodeBuilder (which sets registry, node_names, raw_nodes, matcher, problem,
    operations, defaults, declared_attributes and current_relationship)."""

    def requirements(self, node: str, type_name: str, raw: Any, place: str) -> tuple[Requirement, ...]:
        if not isinstance(raw, list):
            self.problem(f"{place}.requirements", "must be a list")
            return ()
        declared = self.registry.requirement_definitions(type_name)
        result: list[Requirement] = []
        for i, entry in enumerate(raw):
            where = f"{place}.requirements[{i}]"
            if not isinstance(entry, dict) or len(entry) != 1:
                self.problem(where, "must be a one-key mapping 'name: target'")
                continue
            req_name, value = next(iter(entry.items()))
            value = value if isinstance(value, dict) else {"node": value}
            if "node_filter" in value and not _node_filter_shape_ok(value["node_filter"]):
                self.problem(f"{where}.node_filter", "node_filter must be a mapping of 'properties' and/or "
                                                     "'capabilities' (lists of one-key mappings)")
                continue
            target = self.target_of(node, req_name, value, declared.get(req_name, {}), where)
            if target is None:
                continue
            missing = self.missing_capability(value.get("capability") or declared.get(req_name, {}).get("capability"),
                                              target)
            if missing:
                self.problem(where, f"requirement '{req_name}' targets node '{target}', which offers no "
                                    f"capability of type '{missing}'")
                continue
            rel_type, rel_ifaces, rel_props, rel_attrs = self.relationship_of(value.get("relationship"),
                                                                              declared.get(req_name, {}), where)
            if not self.registry.knows(rel_type):
                self.problem(where, f"unknown relationship type '{rel_type}'")
                continue
            named = value.get("relationship")
            template = named if isinstance(named, str) and named in self.relationship_templates else None
            label = f"relationship template '{template}'" if template else \
                f"the relationship of requirement '{req_name}' of node '{node}'"
            # SELF, SOURCE and TARGET in the relationship's operations
            self.current_relationship = Relationship(rel_type, rel_props, rel_attrs, label, node, target)
            try:
                operations = self.operations(rel_type, rel_ifaces, where + ".relationship", "Configure")
            finally:
                self.current_relationship = None
            lineage = self.registry.lineage(rel_type)
            properties = self.defaults(rel_type, "properties")
            properties.update(rel_props)
            result.append(Requirement(req_name, target, rel_type, lineage, operations, properties,
                                      orders=any(t in lineage for t in ORDERING_RELATIONSHIPS), template=template,
                                      attributes=self.declared_attributes(rel_type, rel_attrs)))
        self.check_occurrences(raw, declared, place)
        return tuple(result)

    def check_occurrences(self, raw: list, declared: Mapping[str, Mapping[str, Any]], place: str) -> None:
        """Each requirement of the type assigned as many times as its occurrences allow (TOSCA 1.3: [1, 1]
        unless the definition says otherwise)."""
        counts: dict[Any, int] = {}
        for entry in raw:
            if isinstance(entry, dict) and len(entry) == 1:
                name = next(iter(entry))
                counts[name] = counts.get(name, 0) + 1
        if not set(counts) <= set(declared):
            return  # a requirement the type does not declare (a misspelt one): tosca-parser names it
        for name, definition in declared.items():
            low, high = occurrences(definition)
            count = counts.get(name, 0)
            if not low <= count <= high:
                bounds = f"[{low}, {'UNBOUNDED' if high == float('inf') else int(high)}]"
                self.problem(f"{place}.requirements", f"requirement '{name}' is assigned {count} time"
                                                      f"{'' if count == 1 else 's'}; its occurrences are {bounds}")

    def target_of(self, node: str, req_name: str, value: Mapping[str, Any], definition: Mapping[str, Any],
                  where: str) -> str | None:
        """The node template a requirement assignment targets: the one it names, else the one node template
        that matches what it (and its definition) asks for: a node type, a capability, a node_filter."""
        named = value.get("node")
        node_filter = value.get("node_filter")
        if isinstance(named, str) and named in self.node_names:
            if named == node:
                self.problem(where, f"requirement '{req_name}' targets the node itself")
                return None
            if node_filter and self.matcher.node_type(named) and not self.matcher.filter_holds(named, node_filter):
                self.problem(f"{where}.node_filter", f"requirement '{req_name}' targets node '{named}', which does "
                                                     "not match its node_filter")
                return None
            return named
        if named is not None and not (isinstance(named, str) and self.registry.knows(named)):
            self.problem(where, f"requirement '{req_name}' targets unknown node '{named}' (neither a node template "
                                "of the topology nor a node type)")
            return None
        capability = value.get("capability") or definition.get("capability")
        by_type = named or definition.get("node")
        wanted = Wanted(by_type if isinstance(by_type, str) and self.registry.knows(by_type) else None,
                        capability if isinstance(capability, str) else None, node_filter or None)
        candidates = self.matcher.candidates(node, wanted)
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            self.problem(where, f"requirement '{req_name}' names no node template, and none of the topology's is "
                                f"a node {wanted.describe()}; name its target with 'node'")
        else:
            self.problem(where, f"requirement '{req_name}' names no node template, and several are a node "
                                f"{wanted.describe()}: {', '.join(candidates)}; name one with 'node'")
        return None

    def missing_capability(self, capability: Any, target: str) -> str | None:
        """The capability type a requirement asks for when the target offers none of it (else None)."""
        raw = self.raw_nodes.get(target)
        target_type = raw.get("type") if isinstance(raw, dict) else None
        if not isinstance(capability, str) or not isinstance(target_type, str):
            return None
        target_type = self.registry.full_name(target_type)
        wanted = self.registry.full_name(capability, "capability_types")
        if not self.registry.knows(wanted) or not self.registry.knows(target_type):
            return None  # an unknown type is reported elsewhere
        for cap_name, definition in self.registry.merged_section(target_type, "capabilities").items():
            cap_type = definition.get("type") if isinstance(definition, dict) else definition
            if cap_name == capability or (isinstance(cap_type, str) and wanted in self.registry.lineage(
                    self.registry.full_name(cap_type, "capability_types"))):
                return None
        return capability

    def relationship_of(self, raw: Any, declared: Mapping[str, Any], where: str):
        """(type, interface assignments, properties, attributes) of a requirement's relationship."""
        if isinstance(raw, str) and raw in self.relationship_templates:
            template = self.relationship_templates[raw] or {}
            raw = template if isinstance(template, dict) else {}
        if isinstance(raw, str):
            return self.registry.full_name(raw, "relationship_types"), {}, {}, {}
        if isinstance(raw, dict):
            rel_type = raw.get("type") or declared.get("relationship") or DEFAULT_RELATIONSHIP
            if isinstance(rel_type, dict):
                rel_type = rel_type.get("type", DEFAULT_RELATIONSHIP)
            return (self.registry.full_name(str(rel_type), "relationship_types"), raw.get("interfaces") or {},
                    _mapping(raw.get("properties")), _mapping(raw.get("attributes")))
        rel_type = declared.get("relationship") or DEFAULT_RELATIONSHIP
        if isinstance(rel_type, dict):
            rel_type = rel_type.get("type", DEFAULT_RELATIONSHIP)
        return self.registry.full_name(str(rel_type), "relationship_types"), {}, {}, {}

    def check_requirement_cycles(self, nodes: Mapping[str, NodeTemplate]) -> None:
        """A cycle of ordering relationships cannot be deployed (each end waits for the other); other
        relationships may join nodes both ways."""
        names = requirement_cycle(nodes, ordering_only=True)
        if names:
            self.problem(f"node_templates.{names[0]}.requirements", "requirement cycle: " + " -> ".join(names))


def requirement_cycle(nodes: Mapping[str, NodeTemplate], *, ordering_only: bool) -> list[str]:
    """The nodes of one requirement cycle, first repeated at the end ([] if none); ordering_only: over the
    relationships that order their ends alone."""
    graph = nx.DiGraph()
    graph.add_edges_from((n.name, r.target) for n in nodes.values() for r in n.requirements
                         if r.orders or not ordering_only)
    if nx.is_directed_acyclic_graph(graph):  # linear; find_cycle alone is quadratic on a long chain
        return []
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
    return [edge[0] for edge in cycle] + [cycle[0][0]]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _node_filter_shape_ok(node_filter: Any) -> bool:
    """TOSCA's node_filter: {properties: [{name: constraint(s)}], capabilities: [{name: {properties: [...]}}]}."""
    if node_filter is None:
        return True
    if not isinstance(node_filter, dict) or not set(node_filter) <= {"properties", "capabilities"}:
        return False
    return all(isinstance(node_filter.get(key, []), list)
               and all(isinstance(entry, dict) and len(entry) == 1 for entry in node_filter.get(key) or [])
               for key in ("properties", "capabilities"))
