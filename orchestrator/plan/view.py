"""A planned graph as plain data (model.PlanView): what the API hands out instead of a networkx graph."""

from __future__ import annotations

from collections.abc import Set

import networkx as nx

from orchestrator.model import PlanView


def plan_view(graph: nx.DiGraph, implemented: Set[str] | None = None) -> PlanView:
    waves = tuple(tuple(sorted((graph.nodes[n]["step"] for n in generation), key=lambda s: s.id))
                  for generation in nx.topological_generations(graph))
    return PlanView(waves, tuple(sorted(graph.edges)), frozenset(implemented) if implemented is not None else None)
