"""The tosca-parser boundary: validation of a template we have already read, with tosca-parser's
process-wide state (its error collector, its logger) kept behind one lock."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Mapping

import toscaparser.topology_template as _tp_topology
import toscaparser.tosca_template as _tp_template
from toscaparser.common.exception import ExceptionCollector
from toscaparser.tosca_template import ToscaTemplate

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

_TEMPLATE_NAME = re.compile(r'template "([^"]+)"')
_NOISE = re.compile(r"^\w+(Error|Exception): ")


def check_with_tosca_parser(document: Mapping[str, Any], input_values: Mapping[str, Any],
                            file_name: str) -> list[Problem]:
    """Run tosca-parser's validation on a self-contained document (imports already merged in)."""
    with _PARSER_LOCK:
        logger = logging.getLogger("tosca")
        previous_level, logger.level = logger.level, logging.CRITICAL + 1
        previous_propagate, logger.propagate = logger.propagate, False
        try:
            ToscaTemplate(yaml_dict_tpl=document, parsed_params=dict(input_values), a_file=False)
            return []
        except Exception as exc:  # noqa: BLE001 - tosca-parser raises anything, we report all
            collected = list(ExceptionCollector.getExceptions())
            if collected:
                return [_to_problem(file_name, e) for e in collected]
            return [Problem(file_name, "", f"tosca-parser could not read this template: "
                            f"{type(exc).__name__}: {exc}")]
        finally:
            ExceptionCollector.stop()
            ExceptionCollector.clear()
            logger.level, logger.propagate = previous_level, previous_propagate


def _to_problem(file_name: str, exc: BaseException) -> Problem:
    message = str(getattr(exc, "message", None) or exc).strip()
    message = _NOISE.sub("", message)
    match = _TEMPLATE_NAME.search(message)
    place = f"node_templates.{match.group(1)}" if match else ""
    return Problem(file_name, place, message)
