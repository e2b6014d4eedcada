"""Dependency shapes of the synthetic topologies, and the waves they run in.

A shape is a list of nodes, each with the nodes it DependsOn. Waves are computed from those
dependencies (not from the shape's name) so that the floor of any generated topology is derived
the same way, from the topology itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SHAPES = ("chain", "wide", "tree")


def node_names(count: int) -> list[str]:
    # zero-padded so that names sort in creation order in plans, logs and inventories
    width = max(4, len(str(count)))
    return [f"n{i:0{width}d}" for i in range(1, count + 1)]


def dependencies(shape: str, count: int) -> dict[str, list[str]]:
    """node -> the nodes it depends on, in creation order."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape '{shape}' (expected one of {', '.join(SHAPES)})")
    if count < 1:
        raise ValueError("a topology needs at least one node")
    names = node_names(count)
    deps: dict[str, list[str]] = {}
    for index, name in enumerate(names, start=1):
        if shape == "chain":
            deps[name] = [names[index - 2]] if index > 1 else []
        elif shape == "wide":
            deps[name] = []
        else:  # tree: heap numbering, node i depends on its parent i // 2 (node 1 is the root)
            deps[name] = [names[index // 2 - 1]] if index > 1 else []
    return deps


def waves(deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Longest-path layering: a node runs one wave after the last of its dependencies.

    For a chain this is one node per wave, for wide nodes a single wave, for a tree its BFS levels.
    """
    level: dict[str, int] = {}

    def level_of(node: str) -> int:
        # iterative, because a 5000-node chain would overflow Python's recursion limit
        stack = [node]
        while stack:
            current = stack[-1]
            pending = [d for d in deps[current] if d not in level]
            if pending:
                stack.extend(pending)
                continue
            level[current] = 1 + max((level[d] for d in deps[current]), default=-1)
            stack.pop()
        return level[node]

    for node in deps:
        level_of(node)
    result: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for node in deps:  # keeps the nodes' own order inside a wave
        result[level[node]].append(node)
    return result
