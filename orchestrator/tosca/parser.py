"""The tosca-parser boundary: validation of a template we have already read, with tosca-parser's
process-wide state (its error collector, its logger) kept behind one lock."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import toscaparser.topology_template as _tp_topology
import toscaparser.tosca_template as _tp_template
import toscaparser.triggers as _tp_triggers
from toscaparser.common.exception import ExceptionCollector
from toscaparser.elements.nodetype import NodeType
from toscaparser.elements.statefulentitytype import StatefulEntityType
from toscaparser.functions import Token
from toscaparser.parameters import Output
from toscaparser.tosca_template import ToscaTemplate
from toscaparser.unsupportedtype import UnsupportedType
from toscaparser.utils import validateutils

from orchestrator.model import Problem

# tosca-parser collects errors in class-level lists: one parse at a time per process.
_PARSER_LOCK = threading.Lock()


class _NoRelationshipGraph:
    """tosca-parser builds a template graph in O(n²) twice per parse; orch plans with networkx and
    never reads it, so it is replaced by this empty stand-in (most of the parse time at 5000 nodes)."""

    def __init__(self, nodetemplates: Any) -> None:
        self.nodetemplates = nodetemplates
        self.vertices: dict = {}


_tp_template.ToscaGraph = _NoRelationshipGraph
_tp_topology.ToscaGraph = _NoRelationshipGraph


class _TypeLookups:
    """What tosca-parser looks up again and again about the same few types, remembered for one parse.

    Every type object it builds finds its definition with `name in list(custom_def.keys())` (a list of
    every type, built per lookup), and every inherited value (requirements, capabilities, interfaces...)
    is read by walking derived_from through new type objects: about 90,000 type objects for 5000 node
    templates of one type. The answers depend only on the type name and the type definitions, which do
    not change during a parse, so the first answer is kept (with the definitions it came from, so that
    their ids stay theirs) and given again; a failed lookup is never kept, so its error is reported as
    before. Active only inside `check_with_tosca_parser`, under the parser lock.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple, tuple] | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        self.answers = {}
        try:
            yield
        finally:
            self.answers = None

    def find_definition(self, entity: Any, entitytype: Any, prefix: str, custom_def: Any = None) -> None:
        """StatefulEntityType.__init__: sets `defs` and `type`."""
        if self.answers is None or not isinstance(entitytype, str):
            _FIND_DEFINITION(entity, entitytype, prefix, custom_def)
            return
        key = ("definition", entitytype, prefix, id(custom_def))
        known = self.answers.get(key)
        if known is not None:
            entity.defs, entity.type = known[1], known[2]
            return
        _FIND_DEFINITION(entity, entitytype, prefix, custom_def)
        if entity.defs is not None:
            self.answers[key] = (custom_def, entity.defs, entity.type)

    def parent_node_type(self, node_type: Any) -> Any:
        """NodeType.parent_type: type objects are never changed once built, so one per type is enough."""
        if self.answers is None or not isinstance(getattr(node_type, "type", None), str):
            return _PARENT_NODE_TYPE(node_type)
        defs, custom_def = getattr(node_type, "defs", None), getattr(node_type, "custom_def", None)
        key = ("parent", node_type.type, id(defs), id(custom_def))
        if key not in self.answers:
            self.answers[key] = (defs, custom_def, _PARENT_NODE_TYPE(node_type))
        return self.answers[key][2]


_LOOKUPS = _TypeLookups()
_FIND_DEFINITION = StatefulEntityType.__init__
_PARENT_NODE_TYPE = NodeType.parent_type.fget
StatefulEntityType.__init__ = lambda self, entitytype, prefix, custom_def=None: _LOOKUPS.find_definition(
    self, entitytype, prefix, custom_def)
NodeType.parent_type = property(_LOOKUPS.parent_node_type)

_VALIDATE_FLOAT = validateutils.validate_float


def _validate_float(value: Any) -> Any:
    """A TOSCA float takes an integer too (`delay: 1`); tosca-parser's check wants a YAML float."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _VALIDATE_FLOAT(value)


validateutils.validate_float = _validate_float

# -- tosca-parser's gaps, closed here because they are its mistakes, not the user's ------------------------
# Each refuses (or crashes on) TOSCA 1.3 that orch checks itself (tosca/outputs.py, tosca/functions.py,
# tosca/policies.py), so tosca-parser is told to let it through.

_NODE_TYPE_BY_CAPABILITY = NodeType._get_node_type_by_cap


def _node_type_by_capability(self: Any, capability: Any) -> Any:
    """A requirement definition without `node` (optional in TOSCA 1.3): tosca-parser looks for a node type
    offering exactly that capability type and, finding none (tosca.capabilities.Node, a custom capability
    type no type offers yet), crashes on None. Any node type may fulfil it: tosca.nodes.Root."""
    return _NODE_TYPE_BY_CAPABILITY(self, capability) or "tosca.nodes.Root"


NodeType._get_node_type_by_cap = _node_type_by_capability

# A topology output is a parameter definition (TOSCA 1.3): `type` and the other keywords are allowed; orch
# checks the keywords and the type of each output (tosca/outputs.py).
Output.OUTPUTFIELD = ("description", "value", "type", "required", "default", "status", "constraints",
                      "key_schema", "entry_schema", "metadata", "external-schema")

# token's second argument is a string of one or more separator characters (TOSCA 1.3, token); orch checks
# the arguments (tosca/functions.py check_call) and tosca-parser wants exactly one character.
Token.validate = lambda self: None

# A trigger's condition (TOSCA 1.3, trigger definition): constraint, period, evaluations, method, besides the
# keys tosca-parser knows from earlier drafts; orch checks them (tosca/policies.py).
_tp_triggers.CONDITION_KEYNAMES = (*_tp_triggers.CONDITION_KEYNAMES, "period", "method")

# tosca-parser refuses TOSCA 1.1+'s tosca.nodes.Storage.ObjectStorage and .BlockStorage as "valid but not
# supported", to show how it would refuse a type; they are normative types (orchestrator/tosca/normative-1.3.yaml)
UnsupportedType.un_supported_types = []

_TEMPLATE_NAME = re.compile(r'template "([^"]+)"')
_NOISE = re.compile(r"^\w+(Error|Exception): ")
_VALUE_OF_PROPERTY = re.compile(r'The value "[^"]*" of property')
_PROPERTY_NAME = re.compile(r'of property "([^"]+)"')


def check_with_tosca_parser(document: Mapping[str, Any], input_values: Mapping[str, Any],
                            file_name: str) -> list[Problem]:
    """Run tosca-parser's validation on a self-contained document (imports already merged in)."""
    with _PARSER_LOCK:
        logger = logging.getLogger("tosca")
        previous_level, logger.level = logger.level, logging.CRITICAL + 1
        previous_propagate, logger.propagate = logger.propagate, False
        try:
            with _LOOKUPS.active():
                ToscaTemplate(yaml_dict_tpl=document, parsed_params=dict(input_values), a_file=False)
            return []
        except Exception as exc:  # noqa: BLE001 - tosca-parser raises anything, we report all
            collected = list(ExceptionCollector.getExceptions())
            if collected:
                return [_to_problem(file_name, e, document) for e in collected]
            return [Problem(file_name, "", f"tosca-parser could not read this template: "
                            f"{type(exc).__name__}: {exc}")]
        finally:
            ExceptionCollector.stop()
            ExceptionCollector.clear()
            logger.level, logger.propagate = previous_level, previous_propagate


def _to_problem(file_name: str, exc: BaseException, document: Mapping[str, Any] | None = None) -> Problem:
    message = str(getattr(exc, "message", None) or exc).strip()
    message = _NOISE.sub("", message)
    # the value may have come from an input, which may be a secret: the bound says enough
    message = _VALUE_OF_PROPERTY.sub("The value of property", message)
    match = _TEMPLATE_NAME.search(message)
    place = f"node_templates.{match.group(1)}" if match else ""
    prop = _PROPERTY_NAME.search(message)
    if not place and prop and document is not None:
        places = _property_places(document, prop.group(1))
        place = places[0] if len(places) == 1 else ""
    return Problem(file_name, place, message)


def _property_places(document: Mapping[str, Any], name: str) -> list[str]:
    """Where node templates (or their capabilities) set a property of this name."""
    topology = document.get("topology_template")
    nodes = topology.get("node_templates") if isinstance(topology, dict) else None
    places: list[str] = []
    for node, template in nodes.items() if isinstance(nodes, dict) else ():
        if not isinstance(template, dict):
            continue
        if isinstance(template.get("properties"), dict) and name in template["properties"]:
            places.append(f"node_templates.{node}.properties.{name}")
        capabilities = template.get("capabilities")
        for cap, body in capabilities.items() if isinstance(capabilities, dict) else ():
            properties = body.get("properties") if isinstance(body, dict) else None
            if isinstance(properties, dict) and name in properties:
                places.append(f"node_templates.{node}.capabilities.{cap}.properties.{name}")
    return places
