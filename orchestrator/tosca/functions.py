"""Load-time checks of TOSCA intrinsic function calls: `check_call` says why a call is malformed.
The grammar is orchestrator/functions.py; run-time evaluation is orchestrator/engine/evaluate.py."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from typing import Any

from orchestrator.functions import ENTITIES, FUNCTIONS, as_function, iter_functions

__all__ = ["as_function", "check_call", "iter_functions"]


def check_call(name: str, args: Any, known_inputs: set[str], node_names: set[str], *,
               in_relationship: bool | None = None, relationship_names: Collection[str] = ()) -> str | None:
    """Why a function call is malformed, or None. in_relationship: whether the call is in a relationship's
    operation, where SOURCE and TARGET mean something (None: not known, not checked). relationship_names: the
    topology's relationship templates, which get_property and get_attribute may name as they name a node."""
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
    if name == "token" and (len(args) != 3 or not isinstance(args[1], str) or not args[1]
                            or not isinstance(args[2], int) or isinstance(args[2], bool)):
        # the delimiters: a string of one or more characters, each of which separates (TOSCA 1.3)
        return "token takes [string, delimiters, index]"
    if name == "join" and not (1 <= len(args) <= 2 and (isinstance(args[0], list) or as_function(args[0]))):
        return "join takes [list of strings, optional delimiter]"
    if name in ("get_property", "get_attribute", "get_artifact"):
        if not isinstance(args, list) or len(args) < 2 or not all(isinstance(a, (str, int)) for a in args):
            return f"{name} takes [entity, name, ...]"
        if args[0] in relationship_names and name != "get_artifact":
            return None
        if args[0] not in ENTITIES and args[0] not in node_names:
            named = "a node or relationship template name" if name != "get_artifact" else "a node name"
            return f"{name} refers to unknown node '{args[0]}' (use SELF, SOURCE, TARGET, HOST or {named})"
    if name == "get_operation_output":
        if not isinstance(args, list) or len(args) != 4 or not all(isinstance(a, str) for a in args):
            return "get_operation_output takes [entity, interface, operation, output]"
        if args[0] in relationship_names and args[0] not in node_names:
            # a relationship's operation outputs are kept with its source node's
            return (f"get_operation_output names relationship template '{args[0]}'; orch reads the outputs of a "
                    "relationship's operations through its source node (SELF or SOURCE in the operation)")
        if args[0] not in ENTITIES and args[0] not in node_names:
            return f"get_operation_output refers to unknown node '{args[0]}'"
    if name == "get_secret" and not ((isinstance(args, list) and args and isinstance(args[0], str))
                                     or isinstance(args, str)):
        return "get_secret takes [secret name, optional key]"
    return None
