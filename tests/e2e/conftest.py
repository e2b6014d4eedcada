"""The simulated site for end-to-end tests: one session-wide site named `orchtest`.

Without root, sshd or Slurm the e2e tests are skipped, or fail when ORCH_REQUIRE_SIM=1
(CI sets it, so a broken machine cannot pass by skipping).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from orchestrator.sim import down
from orchestrator.sim.testing import SimSite, bring_up, leftovers, traces_of, unavailable_reason

SITE_NAME = "orchtest"
SITE_HOSTS = ("login", "data", "builder")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the simulated site (root, sshd, slurm)")


def require_site_machine() -> None:
    """Skip (or fail under ORCH_REQUIRE_SIM=1) when this machine cannot run a site."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("ORCH_REQUIRE_SIM") == "1":
        pytest.fail(f"{reason} (ORCH_REQUIRE_SIM=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sim_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimSite]:
    """Site `orchtest` (login, data, builder), up for the whole session, down at its end."""
    require_site_machine()
    directory = tmp_path_factory.mktemp("sim") / SITE_NAME
    site = bring_up(SITE_NAME, directory, SITE_HOSTS)
    try:
        yield site
    finally:
        traces = traces_of(site)
        down(SITE_NAME, directory)
        left = leftovers(traces)
        assert not left, f"down left behind: {left}"

