"""A local Airflow for the tests of issue 17, started by `orch dls up` as a user would, in a temporary ORCH_HOME
on a free loopback port, and stopped by `orch dls down` at the session's end, which must leave none of the
processes it recorded (nor their task runners).

Airflow comes from the checkout's virtual environments: .venv-dls (Airflow 3) and .venv-dls2 (Airflow 2). A
missing one skips its tests here; under CI=true (tests/conftest.py) a skip is a failure, so a broken install
step cannot pass.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.dls import client as dls_client
from orchestrator.dls import local

REPO = Path(__file__).resolve().parents[2]
VENVS = {"airflow3": REPO / ".venv-dls", "airflow2": REPO / ".venv-dls2"}
_INSTALL = {"airflow3": "python3 -m venv .venv-dls && .venv-dls/bin/pip install -e '.[dls]'",
            "airflow2": "see .ci/run (.venv-dls2, Airflow 2 pins)"}


@dataclass(frozen=True)
class LocalAirflow:
    """A running local Airflow: where its home is, how to reach it, what `up` recorded."""

    flavour: str
    home: Path                      # ORCH_HOME
    url: str
    service: dls_client.Service = field(repr=False)
    processes: tuple[local.Process, ...]
    env: dict[str, str] = field(repr=False)   # our environment with ORCH_HOME set: for `orch` and the client

    @property
    def layout(self) -> local.Layout:
        return local.Layout.of(self.home)

    def client(self) -> dls_client.Client:
        return dls_client.Client(self.service)

    def orch(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`orch ARGS` with this Airflow's ORCH_HOME."""
        return orch(*args, env=self.env)

    def pids(self) -> dict:
        return json.loads(self.layout.pids_file.read_text())

    def session_pids(self) -> list[int]:
        """The recorded processes and everything in their sessions (executor workers, task runners)."""
        return [pid for p in self.processes for pid in local.session_members(p)]

    wait_for = staticmethod(lambda condition, timeout=120, every=0.5: wait_for(condition, timeout, every))


def orch(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = 120, every: float = 0.5) -> object:
    """The condition's first true value; fails after `timeout` (a bound on waiting, not a timing assert)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"still not true after {timeout:.0f} s: {getattr(condition, '__name__', condition)}")


class _Airflows:
    """At most one Airflow per flavour for the session, started on first use."""

    def __init__(self, root: Path):
        self.root = root
        self.running: dict[str, LocalAirflow] = {}

    def get(self, flavour: str) -> LocalAirflow:
        if flavour not in self.running:
            self.running[flavour] = self._start(flavour)
        return self.running[flavour]

    def _start(self, flavour: str) -> LocalAirflow:
        program = VENVS[flavour] / "bin" / "airflow"
        if not program.is_file():
            pytest.skip(f"{program} missing ({flavour}): {_INSTALL[flavour]}")
        home = self.root / flavour
        env = {**os.environ, "ORCH_HOME": str(home)}
        for name in ("ORCH_AIRFLOW", "VAULT_ADDR", "VAULT_TOKEN"):
            env.pop(name, None)
        done = orch("dls", "up", "--port", str(free_port()), "--airflow", str(program), env=env)
        assert done.returncode == 0, f"orch dls up failed:\n{done.stdout}\n{done.stderr}"
        layout = local.Layout.of(home)
        service = dls_client.Service.from_file(layout.service_file)
        _, processes = local.recorded(layout)
        return LocalAirflow(flavour, home, service.url, service, tuple(processes), env)

    def stop_all(self) -> None:
        problems = []
        for airflow in self.running.values():
            sessions = {p: local.session_members(p) for p in airflow.processes}
            done = orch("dls", "down", env=airflow.env)
            if done.returncode != 0:
                problems.append(f"{airflow.flavour}: orch dls down failed: {done.stderr}")
            alive = [p for p in airflow.processes if local.is_running(p)]
            left = [pid for p in airflow.processes for pid in local.session_members(p)]
            if alive or left:
                problems.append(f"{airflow.flavour}: down left {alive} and session members {left} "
                                f"(sessions were {sessions})")
            if airflow.layout.pids_file.exists():
                problems.append(f"{airflow.flavour}: pids.json still there after down")
        self.running.clear()  # stopped: a later get() starts a new one
        assert not problems, "\n".join(problems)


_STARTED: list[_Airflows] = []


@pytest.fixture(scope="session")
def _dls_airflows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Airflows]:
    airflows = _Airflows(tmp_path_factory.mktemp("dls"))
    _STARTED.append(airflows)
    try:
        yield airflows
    finally:
        airflows.stop_all()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the Airflows once the last test here has run, not at the session's end: idle, they still take a
    good part of a core (scheduler loops, DAG parsing), which every later test of the suite would pay."""
    if not _STARTED:
        return
    here = Path(__file__).parent
    later = item.session.items[item.session.items.index(item) + 1:]
    if any(here in Path(str(i.path)).parents for i in later):
        return
    for airflows in _STARTED:
        airflows.stop_all()


@pytest.fixture(scope="session")
def dls_airflow(_dls_airflows: _Airflows) -> LocalAirflow:
    """The local Airflow 3 (.venv-dls), up for the whole session."""
    return _dls_airflows.get("airflow3")


@pytest.fixture(scope="session", params=["airflow3", "airflow2"])
def any_airflow(request: pytest.FixtureRequest, _dls_airflows: _Airflows) -> LocalAirflow:
    """Each local Airflow in turn: Airflow 3, then Airflow 2."""
    return _dls_airflows.get(request.param)

