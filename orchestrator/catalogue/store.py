"""The catalogue's port: what any place that keeps records must do (a file here; a service's database or a
data logistics service's catalogue could plug in behind the same protocol), and where the file is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from orchestrator.catalogue.record import Record

CATALOGUE_FILE = "catalogue.yaml"


def catalogue_path(home: Path) -> Path:
    """$ORCH_CATALOGUE, else $ORCH_HOME/catalogue.yaml: the CLI, the service and the playbooks agree on it."""
    given = os.environ.get("ORCH_CATALOGUE")
    return Path(given).expanduser() if given else Path(home) / CATALOGUE_FILE


class Catalogue(Protocol):
    """Each method is one transaction: two writers never lose each other's records."""

    def describe(self) -> str:
        """Where the records are, in words (a file's path)."""
        ...

    def records(self) -> list[Record]:
        """Every record, in the order they were added."""
        ...

    def record(self, record_id: str) -> Record:
        """The record, or UnknownRecord."""
        ...

    def add(self, record: Record) -> Record:
        """Keep a new record; DuplicateRecord if its id is taken."""
        ...

    def add_location(self, record_id: str, location: str) -> Record:
        """The record with one more place holding the same data (nothing changes if it is there)."""
        ...

    def remove(self, record_id: str) -> Record:
        """Forget a record (the data stays where it is); UnknownRecord if there is none."""
        ...
