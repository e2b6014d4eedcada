"""The simulated site shared by the end-to-end and reliability tests: one session-wide site, `orchtest`
unless ORCH_TEST_SITE names another (two pytest runs on one machine need two names: a site name runs
once per machine).

Without root, sshd or Slurm the tests that need it are skipped, or fail when ORCH_REQUIRE_SIM=1
(CI sets it, so a broken machine cannot pass by skipping).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from orchestrator.sim import down
from orchestrator.sim.testing import SimSite, bring_up, leftovers, traces_of, unavailable_reason

SITE_NAME = os.environ.get("ORCH_TEST_SITE", "orchtest")
SITE_HOSTS = ("login", "data", "builder")


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
    """The site (login, data, builder), up for the whole session, down at its end, leaving nothing."""
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
