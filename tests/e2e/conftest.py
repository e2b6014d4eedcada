"""End-to-end tests run on the simulated site (`sim_site`, tests/conftest.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the simulated site (root, sshd, slurm)")
