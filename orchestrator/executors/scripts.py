"""Bash and Python implementations: an operation whose implementation is a script runs through orch's own
playbook, playbooks/scripts/run_script.yaml, on the operation's host and over its connection, like any playbook.
Here: which implementations are scripts, and the variables that playbook needs. Pure functions.

Yorc's conventions for scripts: the operation's inputs and its context (NODE, INSTANCE, HOST, DEPLOYMENT_ID,
SOURCE_*/TARGET_*, TOSCA_JOB_ID) are environment variables of the script, text as given and any other value
as JSON text; the node's artifacts are variables holding their path on the host; what the script exports
comes back as facts (the operation's outputs). Values travel as data all the way: inventory variables marked
!unsafe, module arguments, then the script's environment; never a command line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.model import Artifact

SCRIPT_PLAYBOOK = str(Path(__file__).resolve().parents[2] / "playbooks" / "scripts" / "run_script.yaml")

# the loader (orchestrator/tosca/build.py) accepts the same types and suffixes
KIND_OF_TYPE = {"tosca.artifacts.Implementation.Bash": "bash", "tosca.artifacts.Implementation.Python": "python",
                "Bash": "bash", "Python": "python"}
KIND_OF_SUFFIX = {".sh": "bash", ".py": "python"}
DEFAULT_PYTHON = "python3"  # the host's own, found on its PATH, unless its Compute names an interpreter

# names a shell can see: bash leaves other names out of what it shows a script, so one rule for both kinds
ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ScriptError(ValueError):
    """The operation cannot run as a script as it is (the message names what and why)."""


def script_kind(implementation: str, artifacts: Iterable[Artifact]) -> str | None:
    """bash, python, or None for a playbook: the type of the node's artifact that is the implementation,
    else the file's suffix."""
    for artifact in artifacts:
        if artifact.file == implementation and artifact.type in KIND_OF_TYPE:
            return KIND_OF_TYPE[artifact.type]
    return next((kind for suffix, kind in KIND_OF_SUFFIX.items() if implementation.endswith(suffix)), None)


def as_text(value: Any) -> str:
    """An environment variable's text: a string as it is, nothing as empty, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"))


def script_variables(kind: str, script: str, dependencies: Iterable[str], values: Mapping[str, Any],
                     artifacts: Iterable[Artifact], python: str | None = None,
                     poll: bool = False) -> dict[str, Any]:
    """The variables of run_script.yaml for one operation. `values`: the script's environment (inputs and
    context); `artifacts`: the node's, copied beside the script when orch has them (a URL or a repository's
    file is given as written); `poll`: a job's watch, run again and again, which changes nothing."""
    dependencies = list(dependencies)
    environment = {str(name): as_text(value) for name, value in values.items()}
    copied: list[dict[str, str]] = []
    for artifact in artifacts:
        if artifact.repository or "://" in artifact.file:
            environment[artifact.name] = artifact.file
        else:
            copied.append({"name": artifact.name, "file": artifact.file})
    bad = sorted(name for name in [*environment, *(a["name"] for a in copied)] if not ENVIRONMENT_NAME.match(name))
    if bad:
        what = "an environment variable" if len(bad) == 1 else "environment variables"
        raise ScriptError(f"{', '.join(repr(n) for n in bad)} cannot be {what} of a script (a name of letters, "
                          "digits and _, not beginning with a digit): rename the input or artifact")
    urls = [d for d in dependencies if "://" in d]
    if urls:
        raise ScriptError(f"dependency {urls[0]} is a URL; orch copies beside a script only files it has")
    return {"ORCH_SCRIPT": script, "ORCH_SCRIPT_KIND": kind, "ORCH_SCRIPT_PYTHON": python or DEFAULT_PYTHON,
            "ORCH_SCRIPT_ENV": environment, "ORCH_SCRIPT_DEPENDENCIES": dependencies,
            "ORCH_SCRIPT_ARTIFACTS": copied, "ORCH_SCRIPT_CHANGES": not poll}
