"""Where a site's files go when the caller does not say."""

from __future__ import annotations

import os
from pathlib import Path


def orch_home() -> Path:
    """$ORCH_HOME, else ~/.local/share/orch."""
    home = os.environ.get("ORCH_HOME")
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "orch"


def site_directory(name: str, directory: Path | str | None = None, home: Path | None = None) -> Path:
    """The site's directory: `directory` if given, else <home or orch_home()>/sim/<name>."""
    if directory is not None:
        return Path(directory).expanduser().absolute()
    return ((home or orch_home()) / "sim" / name).absolute()
