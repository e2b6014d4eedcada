"""A topology before anything is deployed: validate it, show its plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.api.core import Core, load_topology
from orchestrator.engine.operations import operation_of
from orchestrator.model import PlanView, Validation
from orchestrator.plan.lifecycle import install_plan, uninstall_plan
from orchestrator.plan.view import plan_view


class Templates(Core):
    def validate(self, path: str, inputs: Mapping[str, Any] | None = None, *,
                 allow_remote_imports: bool = False) -> Validation:
        """Every problem at once (LoadError), or what the template holds and the inputs deploy will need."""
        from orchestrator.tosca.loader import check

        return check(path, inputs or {}, allow_remote_imports=allow_remote_imports)

    def plan(self, path: str, inputs: Mapping[str, Any] | None = None, *, undeploy: bool = False,
             allow_remote_imports: bool = False) -> PlanView:
        """The ordered operations a deploy (or an undeploy) would run; nothing runs. Steps with no
        implementation are no-ops that still move the node's state."""
        topology = load_topology(path, inputs or {}, allow_remote_imports=allow_remote_imports)
        graph = uninstall_plan(topology) if undeploy else install_plan(topology)
        implemented = set()
        for step_id in graph.nodes:
            operation = operation_of(topology, graph.nodes[step_id]["step"])
            if operation and operation.implementation:
                implemented.add(step_id)
        return plan_view(graph, implemented)
