"""Where orch keeps its state: $ORCH_HOME, else ~/.local/share/orch.

One place decides it, so the CLI, the service and the credential store never disagree."""

from __future__ import annotations

import os
from pathlib import Path


def default_home() -> Path:
    return Path(os.environ.get("ORCH_HOME") or Path.home() / ".local" / "share" / "orch")


def deployment_dir(home: Path, name: str) -> Path:
    """A deployment's own files (an unpacked CSAR, its moved-data records): removed with the deployment."""
    return home / "deployments" / name
