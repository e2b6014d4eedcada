"""The contestants: orch, the floor (one ansible-playbook) and xOpera, each able to deploy and undeploy
a generated topology from a fresh state, measured by measure.run.

Every repeat gets fresh state (a new `--home` for orch, a fresh copy of the topology folder for
xOpera, whose state lives in `.opera` beside it), so no run benefits from an earlier one's state.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import floor as floor_mod
import measure
from measure import Sample

HERE = Path(__file__).resolve().parent
OPERA_HOW = (
    "xOpera is not installed; to compare with it, install it apart from orch (its dependencies are older): "
    "python3 -m venv /opt/opera && echo 'cython<3' > /tmp/c.txt && "
    "PIP_CONSTRAINT=/tmp/c.txt /opt/opera/bin/pip install opera==0.7.0, "
    "then pass --opera /opt/opera/bin/opera (or put it on PATH)"
)


@dataclass(frozen=True)
class Settings:
    workers: int
    timeout: float | None
    orch_env: dict[str, str] | None = None  # environment of orch's processes (see orch_environment)


def orch_environment(source: Path | None) -> dict[str, str]:
    """orch from `source` (a checkout or `git archive` of some commit) rather than the installed one:
    its folder goes first on PYTHONPATH, ahead of the venv's editable install. Without it, orch is
    whatever the venv imports, which is the working tree other people may be editing meanwhile."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(source).resolve()), env.get("PYTHONPATH")) if p
        )
    return env


class Tool(Protocol):
    name: str

    def deploy(self, work: Path) -> Sample: ...
    def undeploy(self, work: Path) -> Sample | None: ...


class Orch:
    """orch's CLI, through orch_self.py so that orch's own rusage is known apart from Ansible's."""

    name = "orch"

    def __init__(self, topology: Path, settings: Settings):
        self.topology, self.settings = topology, settings

    def _cmd(self, work: Path, *args: str) -> list[str]:
        return [sys.executable, str(HERE / "orch_self.py"), "--home", str(work / "home"), *args]

    def deploy(self, work: Path) -> Sample:
        return measure.run(
            self._cmd(
                work, "deploy", str(self.topology), "-n", "bench", "--workers", str(self.settings.workers)
            ),
            env=self.settings.orch_env,
            cwd=work,
            timeout=self.settings.timeout,
            self_report=True,
        )

    def undeploy(self, work: Path) -> Sample:
        return measure.run(
            self._cmd(work, "undeploy", "bench", "--workers", str(self.settings.workers)),
            env=self.settings.orch_env,
            cwd=work,
            timeout=self.settings.timeout,
            self_report=True,
        )


class FloorTool:
    name = "floor"

    def __init__(self, topology: Path, settings: Settings, build_dir: Path):
        self.settings = settings
        self.floor = floor_mod.build(topology, build_dir)  # built once, outside any measurement

    def deploy(self, work: Path) -> Sample:
        return measure.run(
            floor_mod.command(self.floor, self.floor.deploy),
            env=floor_mod.environment(),
            cwd=work,
            timeout=self.settings.timeout,
        )

    def undeploy(self, work: Path) -> Sample | None:
        if self.floor.undeploy is None:
            return None
        return measure.run(
            floor_mod.command(self.floor, self.floor.undeploy),
            env=floor_mod.environment(),
            cwd=work,
            timeout=self.settings.timeout,
        )


class XOpera:
    """`opera deploy` / `opera undeploy` in a fresh copy of the topology folder."""

    name = "xopera"

    def __init__(self, topology: Path, settings: Settings, command: str):
        self.topology, self.settings, self.command = topology, settings, command

    def _env(self) -> dict[str, str]:
        # its own venv's ansible-playbook first: xOpera runs whatever ansible-playbook is on PATH
        env = dict(os.environ)
        env["PATH"] = str(Path(self.command).resolve().parent) + os.pathsep + env.get("PATH", "")
        return env

    def deploy(self, work: Path) -> Sample:
        copy = work / "opera"
        shutil.copytree(self.topology.parent, copy)
        return measure.run(
            [self.command, "deploy", "--workers", str(self.settings.workers), self.topology.name],
            env=self._env(),
            cwd=copy,
            timeout=self.settings.timeout,
        )

    def undeploy(self, work: Path) -> Sample:
        return measure.run(
            [self.command, "undeploy", "--workers", str(self.settings.workers)],
            env=self._env(),
            cwd=work / "opera",
            timeout=self.settings.timeout,
        )


def find_opera(explicit: str | None) -> str | None:
    """The opera command if it is installed: --opera, else PATH, else next to this Python. Never installs."""
    for candidate in (explicit, shutil.which("opera"), str(Path(sys.executable).parent / "opera")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None
