"""The simulated site shared by the end-to-end and reliability tests: one session-wide site, `orchtest`
unless ORCH_TEST_SITE names another (two pytest runs on one machine need two names: a site name runs
once per machine).

Without root, sshd or Slurm the tests that need it are skipped, or fail when ORCH_REQUIRE_SIM=1
(CI sets it, so a broken machine cannot pass by skipping).
"""

from __future__ import annotations

import os
import sys
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


# -- under CI no test may skip ----------------------------------------------------------------------------------
# CI (CI=true) installs everything the suite needs, so a skip there hides a broken install step or a missing
# tool: the run fails, listing what skipped. Elsewhere a skip stays a skip.

def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


_SKIPPED: list[tuple[str, str]] = []


def _note_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append((report.nodeid, reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_skip(report)  # a module-level skip (importorskip, pytestmark skipif at import)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _under_ci() or not _SKIPPED:
        return
    lines = [f"{len(_SKIPPED)} skipped under CI=true: a skip is a failure in CI"]
    lines += [f"SKIPPED {nodeid}: {reason}" for nodeid, reason in _SKIPPED]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", lines[0], red=True)
        for line in lines[1:]:
            reporter.write_line(line)
    else:
        print("\n".join(lines), file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# -- a real browser for the web page's tests ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (its own browser download cannot work offline), headless;
    as root it needs --no-sandbox. Skipped without them, a failure under CI=true (see below)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()
