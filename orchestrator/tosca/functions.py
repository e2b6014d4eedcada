"""TOSCA intrinsic functions, evaluated late (when a step runs) against the deployment's state.

`check_value` finds malformed calls at load time; `evaluate` computes values at run time through a
`Context`, which knows the topology, the effective inputs and how to read the store.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from orchestrator.model import NodeTemplate, Topology

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


def check_call(name: str, args: Any, known_inputs: set[str], node_names: set[str], *,
               in_relationship: bool | None = None) -> str | None:
    """Why a function call is malformed, or None. in_relationship: whether the call is in a relationship's
    operation, where SOURCE and TARGET mean something (None: not known, not checked)."""
    if name not in FUNCTIONS:
        near = difflib.get_close_matches(name, sorted(FUNCTIONS), n=1)
        return f"unknown function '{name}'" + (f" (did you mean '{near[0]}'?)" if near else "")
    if (in_relationship is False and isinstance(args, list) and args and args[0] in ("SOURCE", "TARGET")
            and name in ("get_property", "get_attribute", "get_artifact", "get_operation_output")):
        return f"{name} uses {args[0]}, which only means something in a relationship's operations"
    if name == "get_input":
        key = args[0] if isinstance(args, list) and args else args
        if not isinstance(key, str):
            return "get_input takes the name of an input"
        if key not in known_inputs:
            return f"get_input refers to undeclared input '{key}'"
        return None
    if name in ("concat", "join", "token") and not isinstance(args, list):
        return f"{name} takes a list of arguments"
    if name == "token" and (len(args) != 3 or not isinstance(args[2], int)):
        return "token takes [string, delimiters, index]"
    if name == "join" and not (1 <= len(args) <= 2 and (isinstance(args[0], list) or as_function(args[0]))):
        return "join takes [list of strings, optional delimiter]"
    if name in ("get_property", "get_attribute", "get_artifact"):
        if not isinstance(args, list) or len(args) < 2 or not all(isinstance(a, (str, int)) for a in args):
            return f"{name} takes [entity, name, ...]"
        if args[0] not in ENTITIES and args[0] not in node_names:
            return f"{name} refers to unknown node '{args[0]}' (use SELF, SOURCE, TARGET, HOST or a node name)"
    if name == "get_operation_output":
        if not isinstance(args, list) or len(args) != 4 or not all(isinstance(a, str) for a in args):
            return "get_operation_output takes [entity, interface, operation, output]"
        if args[0] not in ENTITIES and args[0] not in node_names:
            return f"get_operation_output refers to unknown node '{args[0]}'"
    if name == "get_secret" and not ((isinstance(args, list) and args and isinstance(args[0], str))
                                     or isinstance(args, str)):
        return "get_secret takes [secret name, optional key]"
    return None


@dataclass(frozen=True)
class Context:
    """What an expression can see when it is evaluated."""

    topology: Topology
    node: str | None  # SELF
    inputs: Mapping[str, Any]  # effective inputs (workflow inputs over topology inputs)
    read_attribute: Callable[[str, str], Any]  # (node, name) -> stored value or None
    read_operation_output: Callable[[str, str, str], Any]  # (node, "Interface.op", output) -> value or None
    read_secret: Callable[[str, str | None], Any] | None = None
    source: str | None = None  # in relationship operations
    target: str | None = None

    def for_node(self, node: str) -> "Context":
        return Context(self.topology, node, self.inputs, self.read_attribute, self.read_operation_output,
                       self.read_secret)


def evaluate(value: Any, ctx: Context) -> Any:
    call = as_function(value)
    if call:
        return _CALLS[call[0]](call[1], ctx)
    if isinstance(value, dict):
        return {k: evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    return value


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


def _entities(entity: str, ctx: Context) -> list[str]:
    """Nodes to look in, in order: HOST means the whole chain below SELF."""
    if entity == "SELF":
        names = [ctx.node]
    elif entity == "SOURCE":
        names = [ctx.source]
    elif entity == "TARGET":
        names = [ctx.target]
    elif entity == "HOST":
        if ctx.node is None:
            raise FunctionError("HOST used where there is no SELF")
        names = host_chain(ctx.topology, ctx.node)[1:]
        if not names:
            raise FunctionError(f"node '{ctx.node}' is not hosted on anything (HOST)")
    else:
        names = [entity]
    for name in names:
        if name is None or name not in ctx.topology.nodes:
            raise FunctionError(f"{entity} does not name a node here")
    return names  # type: ignore[return-value]


def _dig(value: Any, keys: list[Any], what: str) -> Any:
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            raise FunctionError(f"{what} has no element '{key}'")
    return value


def _property_of(template: NodeTemplate, args: list[Any], ctx: Context) -> tuple[bool, Any]:
    name, rest = args[0], list(args[1:])
    if name in template.properties:
        return True, _dig(evaluate(template.properties[name], ctx.for_node(template.name)), rest,
                          f"property '{name}' of '{template.name}'")
    if name in template.capabilities and rest and rest[0] in template.capabilities[name]:
        cap_value = evaluate(template.capabilities[name][rest[0]], ctx.for_node(template.name))
        return True, _dig(cap_value, rest[1:], f"capability '{name}' of '{template.name}'")
    for requirement in template.requirements:
        if requirement.name == name and rest:
            target = ctx.topology.nodes[requirement.target]
            return _property_of(target, rest, ctx)
    return False, None


def _get_property(args: list[Any], ctx: Context) -> Any:
    for node in _entities(args[0], ctx):
        found, value = _property_of(ctx.topology.nodes[node], list(args[1:]), ctx)
        if found:
            return value
    raise FunctionError(f"{args[0]} has no property '{args[1]}'")


def _get_attribute(args: list[Any], ctx: Context) -> Any:
    name, rest = args[1], list(args[2:])
    for node in _entities(args[0], ctx):
        template = ctx.topology.nodes[node]
        requirement = next((r for r in template.requirements if r.name == name), None)
        if requirement is not None and rest:  # [SELF, requirement, attribute]: the target's attribute
            return _get_attribute([requirement.target, *rest], ctx)
        if name == "tosca_name":
            return node
        if name == "tosca_id":
            return f"{node}_0"
        stored = ctx.read_attribute(node, name)
        if stored is not None:
            return _dig(stored, rest, f"attribute '{name}' of '{node}'")
        if name in template.attributes and template.attributes[name] is not None:
            return _dig(evaluate(template.attributes[name], ctx.for_node(node)), rest, f"attribute '{name}'")
        if name in template.properties:  # TOSCA: a property is also readable as an attribute
            return _dig(evaluate(template.properties[name], ctx.for_node(node)), rest, f"property '{name}'")
    return None  # not set yet: TOSCA attributes may legitimately be empty


def _get_input(args: Any, ctx: Context) -> Any:
    name = args[0] if isinstance(args, list) else args
    if name not in ctx.inputs:
        raise FunctionError(f"input '{name}' has no value")
    value = evaluate(ctx.inputs[name], ctx)  # a default may itself be a function (e.g. get_artifact)
    return _dig(value, list(args[1:]), f"input '{name}'") if isinstance(args, list) else value


def _get_operation_output(args: list[Any], ctx: Context) -> Any:
    entity, interface, operation, output = args
    node = _entities(entity, ctx)[0]
    short = interface.rsplit(".", 1)[-1]
    return ctx.read_operation_output(node, f"{short}.{operation}", output)


def _get_artifact(args: list[Any], ctx: Context) -> Any:
    for node in _entities(args[0], ctx):
        artifact = ctx.topology.nodes[node].artifacts.get(args[1])
        if artifact:
            return artifact.file
    raise FunctionError(f"{args[0]} has no artifact '{args[1]}'")


def _concat(args: list[Any], ctx: Context) -> str:
    return "".join(_text(evaluate(a, ctx)) for a in args)


def _join(args: list[Any], ctx: Context) -> str:
    items = evaluate(args[0], ctx)
    delimiter = evaluate(args[1], ctx) if len(args) > 1 else ""
    return str(delimiter).join(_text(i) for i in items)


def _token(args: list[Any], ctx: Context) -> str:
    text, delimiters, index = _text(evaluate(args[0], ctx)), str(args[1]), args[2]
    parts = [text]
    for d in delimiters:
        parts = [p for part in parts for p in part.split(d)]
    if not 0 <= index < len(parts):
        raise FunctionError(f"token index {index} out of range for '{text}'")
    return parts[index]


def _get_secret(args: Any, ctx: Context) -> Any:
    name, key = (args, None) if isinstance(args, str) else (args[0], args[1] if len(args) > 1 else None)
    if ctx.read_secret is None:
        raise FunctionError("get_secret used but no secret store is configured")
    return ctx.read_secret(name, key)


def _text(value: Any) -> str:
    if isinstance(value, bool):  # TOSCA/YAML spelling, not Python's
        return "true" if value else "false"
    return "" if value is None else str(value)


_CALLS: dict[str, Callable[[Any, Context], Any]] = {
    "get_input": _get_input, "get_property": _get_property, "get_attribute": _get_attribute,
    "get_operation_output": _get_operation_output, "concat": _concat, "join": _join, "token": _token,
    "get_artifact": _get_artifact, "get_secret": _get_secret,
}
