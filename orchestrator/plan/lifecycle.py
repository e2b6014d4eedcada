"""The declarative workflows: install (create → configure → start, in dependency order, with the
relationship Configure operations between) and uninstall (stop → delete, in reverse).

Pure functions from a Topology to a networkx DiGraph whose nodes are step ids and whose node
attribute "step" is the `Step`. An edge a → b means a must finish before b starts.
"""

from __future__ import annotations

import networkx as nx

from orchestrator.model import Requirement, Step, Topology

CONNECTS_TO = "tosca.relationships.ConnectsTo"
NODE_LIFECYCLE = (("create", "creating", "created"), ("configure", "configuring", "configured"),
                  ("start", "starting", "started"))
# a deleted node is back where it started: nothing will act on it until it is created again
NODE_TEARDOWN = (("stop", "stopping", "stopped"), ("delete", "deleting", "initial"))

# relationship operation, whose host runs it, (end, operation) it follows, (end, operation) it precedes
RELATIONSHIP_OPERATIONS = (
    ("pre_configure_source", "source", (("source", "create"), ("target", "start")), (("source", "configure"),)),
    ("pre_configure_target", "target", (("source", "create"), ("target", "start")), (("source", "configure"),)),
    ("post_configure_source", "source", (("source", "configure"),), (("source", "start"),)),
    ("post_configure_target", "target", (("source", "configure"),), (("source", "start"),)),
    ("add_target", "source", (("source", "start"), ("target", "start")), ()),
    ("add_source", "target", (("source", "start"), ("target", "start")), ()),
)


def node_step_id(node: str, operation: str) -> str:
    return f"{node}.{operation}"


def relationship_step_id(node: str, index: int, requirement: Requirement, operation: str) -> str:
    return f"{node}.{requirement.name}[{index}]->{requirement.target}.{operation}"


def _add_node_chain(graph: nx.DiGraph, name: str, lifecycle: tuple[tuple[str, str, str], ...]) -> None:
    """One node's Standard operations, one after the other."""
    previous = None
    for operation, running, done in lifecycle:
        step = Step(node_step_id(name, operation), name, operation=f"Standard.{operation}",
                    state=done, running_state=running)
        graph.add_node(step.id, step=step)
        if previous:
            graph.add_edge(previous, step.id)
        previous = step.id


def install_plan(topology: Topology) -> nx.DiGraph:
    graph = nx.DiGraph()
    for name in topology.nodes:
        _add_node_chain(graph, name, NODE_LIFECYCLE)
    for source in topology.nodes.values():
        for index, requirement in enumerate(source.requirements):
            _wire_relationship(graph, source.name, index, requirement)
    return graph


def _wire_relationship(graph: nx.DiGraph, source: str, index: int, requirement: Requirement) -> None:
    target = requirement.target
    target_started = node_step_id(target, "start")
    if requirement.is_a(CONNECTS_TO):
        graph.add_edge(target_started, node_step_id(source, "configure"))
    else:  # HostedOn, DependsOn and anything else: the target is up before the source is created
        graph.add_edge(target_started, node_step_id(source, "create"))

    for operation, side, after, before in RELATIONSHIP_OPERATIONS:
        found = requirement.operations.get(f"Configure.{operation}")
        if not (found and found.implementation):
            continue  # a relationship operation without implementation would only add a no-op step
        step = Step(relationship_step_id(source, index, requirement, operation), source,
                    operation=f"Configure.{operation}", requirement=index, side=side)
        graph.add_node(step.id, step=step)
        ends = {"source": source, "target": target}
        for whose, node_operation in after:
            graph.add_edge(node_step_id(ends[whose], node_operation), step.id)
        for whose, node_operation in before:
            graph.add_edge(step.id, node_step_id(ends[whose], node_operation))


def uninstall_plan(topology: Topology) -> nx.DiGraph:
    graph = nx.DiGraph()
    for name in topology.nodes:
        _add_node_chain(graph, name, NODE_TEARDOWN)
    for source in topology.nodes.values():
        for index, requirement in enumerate(source.requirements):
            found = requirement.operations.get("Configure.remove_target")
            if found and found.implementation:
                remove = Step(relationship_step_id(source.name, index, requirement, "remove_target"), source.name,
                              operation="Configure.remove_target", requirement=index, side="source")
                graph.add_node(remove.id, step=remove)
                graph.add_edge(remove.id, node_step_id(source.name, "stop"))
            # the source is gone before what it needed is stopped
            graph.add_edge(node_step_id(source.name, "delete"), node_step_id(requirement.target, "stop"))
    return graph


def ordered_steps(graph: nx.DiGraph) -> list[Step]:
    """A deterministic topological order (for display; execution follows the edges, not this list)."""
    return [graph.nodes[n]["step"] for n in nx.lexicographical_topological_sort(graph)]
