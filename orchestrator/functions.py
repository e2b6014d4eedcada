"""The grammar of TOSCA's intrinsic functions, shared by the load-time checks (orchestrator/tosca) and
the run-time evaluator (orchestrator/engine/evaluate.py): which calls exist, how a call is recognised
in a value, and the HostedOn walk that SELF/HOST and an operation's host both follow.

Pure functions of the model: importing it pulls in no parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from orchestrator.model import Topology

FUNCTIONS = {"get_input", "get_property", "get_attribute", "get_operation_output", "concat", "join",
             "token", "get_artifact", "get_secret"}
ENTITIES = {"SELF", "SOURCE", "TARGET", "HOST"}
HOSTED_ON = "tosca.relationships.HostedOn"
COMPUTE = "tosca.nodes.Compute"


class FunctionError(Exception):
    """A function could not be evaluated (bad reference, missing value)."""


def as_function(value: Any) -> tuple[str, Any] | None:
    if isinstance(value, dict) and len(value) == 1:
        name, args = next(iter(value.items()))
        if name in FUNCTIONS:
            return name, args
    return None


def _unknown_call(value: Any) -> tuple[str, Any] | None:
    """A one-key mapping whose key looks like a function that does not exist (get_attributes: a typo)."""
    if isinstance(value, dict) and len(value) == 1:
        name, args = next(iter(value.items()))
        if isinstance(name, str) and name.startswith("get_") and name not in FUNCTIONS:
            return name, args
    return None


def iter_functions(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every function call inside a value: (path, name, args); also calls of functions that do not exist
    (a one-key mapping whose key starts with get_), which check_call reports."""
    call = as_function(value) or _unknown_call(value)
    if call:
        yield path, call[0], call[1]
        args = call[1] if isinstance(call[1], list) else [call[1]]
        for i, arg in enumerate(args):
            yield from iter_functions(arg, f"{path}.{call[0]}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from iter_functions(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_functions(v, f"{path}[{i}]")


def host_chain(topology: Topology, node: str) -> list[str]:
    """The node and the nodes it is hosted on, down to the bottom of the HostedOn chain."""
    chain = [node]
    while True:
        template = topology.nodes[chain[-1]]
        hosts = [r.target for r in template.requirements if r.is_a(HOSTED_ON)]
        if not hosts or hosts[0] in chain:
            return chain
        chain.append(hosts[0])


def compute_host(topology: Topology, node: str) -> str | None:
    """The Compute at the bottom of the node's HostedOn chain, or None (runs on the orchestrator)."""
    for name in host_chain(topology, node):
        if topology.nodes[name].is_a(COMPUTE):
            return name
    return None
