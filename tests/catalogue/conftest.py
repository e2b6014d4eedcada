"""Every catalogue test uses its own home's catalogue: an ORCH_CATALOGUE of the person running the tests
would otherwise receive their records."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def own_catalogue(monkeypatch):
    monkeypatch.delenv("ORCH_CATALOGUE", raising=False)
