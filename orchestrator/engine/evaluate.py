"""TOSCA intrinsic functions evaluated late, when a step runs, against the deployment's state:
`evaluate` computes a value through a `Context`, which knows the topology, the effective inputs and
how to read the store. (Malformed calls were found at load time: orchestrator/tosca/functions.py.)

get_property and get_attribute may name a relationship: SELF in a relationship's operation, or a
relationship template. A relationship's attributes are kept in the store under `relationship_key`
(model.py), as if it were a node of that name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.functions import FunctionError, as_function, host_chain
from orchestrator.model import NodeTemplate, Topology, relationship_key


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
    # in a relationship's operations, which requirement of the source it is: SELF, for get_property and
    # get_attribute (TOSCA: the relationship); the other functions read SELF as the source node
    requirement: int | None = None

    def for_node(self, node: str) -> Context:
        return Context(self.topology, node, self.inputs, self.read_attribute, self.read_operation_output,
                       self.read_secret)

    def for_relationship(self, source: str, requirement: int) -> Context:
        target = self.topology.nodes[source].requirements[requirement].target
        return Context(self.topology, source, self.inputs, self.read_attribute, self.read_operation_output,
                       self.read_secret, source, target, requirement)


@dataclass(frozen=True)
class Relationship:
    """A relationship named by a function: its values, and where its attributes are kept (None: a
    relationship template no requirement uses, which has no attributes but its declared ones)."""

    name: str  # the template's, else the requirement's
    properties: Mapping[str, Any]
    attributes: Mapping[str, Any]
    key: str | None
    context: Context  # SELF is this relationship, for its own values


def relationship_named(entity: str, ctx: Context) -> Relationship | None:
    """The relationship a function's entity names: SELF in a relationship's operation, or a relationship
    template (a node template of the same name wins); None when it names none."""
    if entity == "SELF" and ctx.requirement is not None and ctx.source is not None:
        return _instance(ctx.source, ctx.requirement, ctx)
    template = ctx.topology.relationship_templates.get(entity)
    if template is None or entity in ctx.topology.nodes:
        return None
    if len(template.instances) == 1:  # several: refused at load time for get_attribute
        return _instance(*template.instances[0], ctx)
    return Relationship(template.name, template.properties, template.attributes, None,
                        replace(ctx, node=None, source=None, target=None, requirement=None))


def _instance(source: str, index: int, ctx: Context) -> Relationship:
    requirement = ctx.topology.nodes[source].requirements[index]
    return Relationship(requirement.template or requirement.name, requirement.properties, requirement.attributes,
                        relationship_key(source, index), ctx.for_relationship(source, index))


def evaluate(value: Any, ctx: Context) -> Any:
    call = as_function(value)
    if call:
        return _CALLS[call[0]](call[1], ctx)
    if isinstance(value, dict):
        return {k: evaluate(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate(v, ctx) for v in value]
    return value


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
        if (isinstance(value, dict) and key in value) or (
                isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)):
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
    relationship = relationship_named(args[0], ctx)
    if relationship is not None:
        name, rest = args[1], list(args[2:])
        if name not in relationship.properties:
            raise FunctionError(f"{args[0]} has no property '{name}'")
        return _dig(evaluate(relationship.properties[name], relationship.context), rest,
                    f"property '{name}' of relationship '{relationship.name}'")
    for node in _entities(args[0], ctx):
        found, value = _property_of(ctx.topology.nodes[node], list(args[1:]), ctx)
        if found:
            return value
    raise FunctionError(f"{args[0]} has no property '{args[1]}'")


def _get_attribute(args: list[Any], ctx: Context) -> Any:
    name, rest = args[1], list(args[2:])
    relationship = relationship_named(args[0], ctx)
    if relationship is not None:
        return _relationship_attribute(relationship, name, rest, ctx)
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


def _relationship_attribute(relationship: Relationship, name: str, rest: list[Any], ctx: Context) -> Any:
    if name == "tosca_name":
        return relationship.name
    if name == "tosca_id" and relationship.key is not None:
        return relationship.key
    stored = ctx.read_attribute(relationship.key, name) if relationship.key is not None else None
    what = f"attribute '{name}' of relationship '{relationship.name}'"
    if stored is not None:
        return _dig(stored, rest, what)
    if relationship.attributes.get(name) is not None:
        return _dig(evaluate(relationship.attributes[name], relationship.context), rest, what)
    if name in relationship.properties:  # as for a node: a property is also readable as an attribute
        return _dig(evaluate(relationship.properties[name], relationship.context), rest, what)
    return None


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
