"""Input values as users give them: YAML files merged in order, then key=value assignments."""

from __future__ import annotations

from typing import Any

from orchestrator.model import LoadError, Problem
from orchestrator.tosca.yamlio import read_yaml


def read_inputs(files: list[str], assignments: list[str]) -> dict[str, Any]:
    """Inputs from -i files (merged in order) and --set key=value (last wins)."""
    values: dict[str, Any] = {}
    for file in files:
        document, problems = read_yaml(file, "inputs file")
        if problems:
            raise LoadError(problems)
        if document is None:
            continue
        if not isinstance(document, dict):
            raise LoadError([Problem(file, "", "an inputs file must be a YAML mapping of input names to values")])
        values.update(document)
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise LoadError([Problem("--set", assignment, "expected key=value")])
        values[key.strip()] = value
    return values
