"""The reliability tests: faults injected for real (SIGKILL at random moments, dead hosts, concurrent
commands, planted secrets), on localhost and on the simulated site (`sim_site`, tests/conftest.py).

Every test here is marked `reliability`, so that `pytest -m reliability` runs just them; the default
run includes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)
