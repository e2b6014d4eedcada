"""Where orch keeps its state: $ORCH_HOME, else ~/.local/share/orch.

One place decides it, so the CLI, the service and the credential store never disagree."""

from __future__ import annotations

import os
import re
from pathlib import Path

# a deployment's name becomes a folder name under $ORCH_HOME/deployments (and undeploy removes that
# folder): letters, digits, _ . - only, not starting with a dot or a dash, so it can never climb out
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def deployment_name_problem(name: str) -> str | None:
    """Why `name` cannot name a deployment, or None."""
    if not isinstance(name, str) or not _DEPLOYMENT_NAME.fullmatch(name):
        return (f"invalid deployment name {name!r}: use 1 to 100 of A-Z a-z 0-9 _ . - "
                "(not starting with '.' or '-')")
    return None


def default_home() -> Path:
    return Path(os.environ.get("ORCH_HOME") or Path.home() / ".local" / "share" / "orch")


def deployment_dir(home: Path, name: str) -> Path:
    """A deployment's own files (an unpacked CSAR, its moved-data records): removed with the deployment."""
    problem = deployment_name_problem(name)
    if problem:
        raise ValueError(problem)
    return home / "deployments" / name
