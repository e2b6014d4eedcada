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
NODE_TEARDOWN = (("stop", "stopping", "stopped"), ("delete", "deleting", "deleted"))


def node_step_id(node: str, operation: str) -> str:
    return f"{node}.{operation}"


def relationship_step_id(node: str, index: int, requirement: Requirement, operation: str) -> str:
    return f"{node}.{requirement.name}[{index}]->{requirement.target}.{operation}"


def install_plan(topology: Topology) -> nx.DiGraph:
    graph = nx.DiGraph()
    for name in topology.nodes:
        previous = None
        for operation, running, done in NODE_LIFECYCLE:
            step = Step(node_step_id(name, operation), name, operation=f"Standard.{operation}",
                        state=done, running_state=running)
            graph.add_node(step.id, step=step)
            if previous:
                graph.add_edge(previous, step.id)
            previous = step.id
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

    def has(operation: str) -> bool:
        found = requirement.operations.get(f"Configure.{operation}")
        return bool(found and found.implementation)

    def rel_step(operation: str, side: str) -> str:
        step = Step(relationship_step_id(source, index, requirement, operation), source,
                    operation=f"Configure.{operation}", requirement=index, side=side)
        graph.add_node(step.id, step=step)
        return step.id

    # Relationship operations without an implementation would only add no-op steps: left out.
    for operation, side in (("pre_configure_source", "source"), ("pre_configure_target", "target")):
        if not has(operation):
            continue
        step_id = rel_step(operation, side)
        graph.add_edge(node_step_id(source, "create"), step_id)
        graph.add_edge(target_started, step_id)
        graph.add_edge(step_id, node_step_id(source, "configure"))
    for operation, side in (("post_configure_source", "source"), ("post_configure_target", "target")):
        if not has(operation):
            continue
        step_id = rel_step(operation, side)
        graph.add_edge(node_step_id(source, "configure"), step_id)
        graph.add_edge(step_id, node_step_id(source, "start"))
    for operation, side in (("add_target", "source"), ("add_source", "target")):
        if not has(operation):
            continue
        step_id = rel_step(operation, side)
        graph.add_edge(node_step_id(source, "start"), step_id)
        graph.add_edge(target_started, step_id)


def uninstall_plan(topology: Topology) -> nx.DiGraph:
    graph = nx.DiGraph()
    for name in topology.nodes:
        previous = None
        for operation, running, done in NODE_TEARDOWN:
            step = Step(node_step_id(name, operation), name, operation=f"Standard.{operation}",
                        state=done, running_state=running)
            graph.add_node(step.id, step=step)
            if previous:
                graph.add_edge(previous, step.id)
            previous = step.id
        graph.nodes[previous]["step"] = Step(previous, name, operation="Standard.delete", state="initial",
                                             running_state="deleting")
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
