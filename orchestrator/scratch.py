"""Per-process scratch folders under $ORCH_HOME, and the removal of those a killed orch left behind.

A folder is named after its owner, `<pid>.<kernel start time>-<random>`: an orch that dies by SIGKILL
cannot clean up, so every later orch removes the folders whose owner is gone (pid and start time
together name one process, even after the pid is reused). What they hold — inventories with
operation variables, SSH keys in clear — must not outlive the command that needed it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process: with the pid it names one process, even after pid reuse."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{process_start_time(pid) or 0}"


def stale_folders(base: Path, prefix: str = "") -> list[Path]:
    """The folders `<prefix><owner tag>-...` of `base`, ours, whose owning process is gone."""
    stale = []
    for folder in base.iterdir():
        if not folder.name.startswith(prefix) or not folder.is_dir() or folder.is_symlink():
            continue
        pid, _, start = folder.name[len(prefix):].split("-", 1)[0].partition(".")
        if not pid.isdigit() or start == "0" or folder.stat().st_uid != os.geteuid():
            continue  # "0": start time unknown, so never removed
        if process_start_time(int(pid)) != start:
            stale.append(folder)
    return stale


def sweep_stale(base: Path) -> None:
    """Remove the folders of `base` whose owning process is gone."""
    for folder in stale_folders(base):
        shutil.rmtree(folder, ignore_errors=True)


def new_private_folder(base: Path) -> Path:
    """A fresh 0700 folder of this process under `base` (0700 too), after sweeping dead owners' ones."""
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    sweep_stale(base)
    return Path(tempfile.mkdtemp(prefix=f"{owner_tag()}-", dir=base))  # mkdtemp: 0700, unique
