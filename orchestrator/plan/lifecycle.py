"""The declarative workflows: install (create → configure → start, in dependency order, with the
relationship Configure operations between) and uninstall (stop → delete, in reverse).

Pure functions from a Topology to a networkx DiGraph whose nodes are step ids and whose node
attribute "step" is the `Step`. An edge a → b means a must finish before b starts.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from orchestrator.gcpause import paused_gc
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


class _Parts:
    """Steps and edges gathered first, then added to the graph in two calls (per-call overhead of networkx
    is most of a plan's time at thousands of nodes); the order they were gathered in is kept."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, dict]] = []
        self.edges: list[tuple[str, str]] = []

    def step(self, step: Step) -> str:
        self.steps.append((step.id, {"step": step}))
        return step.id

    def graph(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.steps)
        graph.add_edges_from(self.edges)
        return graph


def _add_node_chain(parts: _Parts, name: str, lifecycle: tuple[tuple[str, str, str], ...]) -> None:
    """One node's Standard operations, one after the other."""
    previous = None
    for operation, running, done in lifecycle:
        step_id = parts.step(Step(node_step_id(name, operation), name, operation=f"Standard.{operation}",
                                  state=done, running_state=running))
        if previous:
            parts.edges.append((previous, step_id))
        previous = step_id


def install_plan(topology: Topology) -> nx.DiGraph:
    return _plan(topology, NODE_LIFECYCLE, _wire_relationship)


def _plan(topology: Topology, lifecycle: tuple[tuple[str, str, str], ...],
          wire: Callable[[_Parts, str, int, Requirement], None]) -> nx.DiGraph:
    """Each node's lifecycle chain, then each requirement wired by `wire`."""
    parts = _Parts()
    with paused_gc():  # a few steps per node, all kept: see gcpause
        for name in topology.nodes:
            _add_node_chain(parts, name, lifecycle)
        for source in topology.nodes.values():
            for index, requirement in enumerate(source.requirements):
                wire(parts, source.name, index, requirement)
        return parts.graph()


# a relationship that does not order its ends (derived from Root only): its operations run once both ends
# are started, the one moment that needs no order between them
UNORDERED_AFTER = (("source", "start"), ("target", "start"))


def _wire_relationship(parts: _Parts, source: str, index: int, requirement: Requirement) -> None:
    target = requirement.target
    target_started = node_step_id(target, "start")
    if not requirement.orders:
        pass  # two servers joined by such a relationship come up independently, in any order
    elif requirement.is_a(CONNECTS_TO):
        parts.edges.append((target_started, node_step_id(source, "configure")))
    else:  # HostedOn, DependsOn and what derives from them: the target is up before the source is created
        parts.edges.append((target_started, node_step_id(source, "create")))

    for operation, side, after, before in RELATIONSHIP_OPERATIONS:
        if not requirement.orders:
            after, before = UNORDERED_AFTER, ()
        found = requirement.operations.get(f"Configure.{operation}")
        if not (found and found.implementation):
            continue  # a relationship operation without implementation would only add a no-op step
        step_id = parts.step(Step(relationship_step_id(source, index, requirement, operation), source,
                                  operation=f"Configure.{operation}", requirement=index, side=side))
        ends = {"source": source, "target": target}
        parts.edges.extend((node_step_id(ends[whose], node_operation), step_id) for whose, node_operation in after)
        parts.edges.extend((step_id, node_step_id(ends[whose], node_operation)) for whose, node_operation in before)


def uninstall_plan(topology: Topology) -> nx.DiGraph:
    return _plan(topology, NODE_TEARDOWN, _unwire_relationship)


def _unwire_relationship(parts: _Parts, source: str, index: int, requirement: Requirement) -> None:
    found = requirement.operations.get("Configure.remove_target")
    if found and found.implementation:
        remove = parts.step(Step(relationship_step_id(source, index, requirement, "remove_target"), source,
                                 operation="Configure.remove_target", requirement=index, side="source"))
        parts.edges.append((remove, node_step_id(source, "stop")))
    if requirement.orders:  # the source is gone before what it needed is stopped
        parts.edges.append((node_step_id(source, "delete"), node_step_id(requirement.target, "stop")))


def ordered_steps(graph: nx.DiGraph) -> list[Step]:
    """A deterministic topological order (for display; execution follows the edges, not this list)."""
    return [graph.nodes[n]["step"] for n in nx.lexicographical_topological_sort(graph)]
