"""The data catalogue: records of datasets that a data pipeline's source `catalogue:ID` names.

The records live behind orchestrator.catalogue's port (a YAML file: $ORCH_CATALOGUE, else
$ORCH_HOME/catalogue.yaml). Its errors become the API's: a record that is not there is NotFound, a record
that is not valid is Refused (naming its file and field), an id taken is a UsageError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.api.core import Core
from orchestrator.api.records import Result
from orchestrator.api.service import NotFound, Refused
from orchestrator.catalogue import (
    PATTERNS,
    Catalogue,
    CatalogueError,
    InvalidRecord,
    Record,
    UnknownRecord,
    YamlCatalogue,
    catalogue_id,
    catalogue_path,
    read_record_file,
    record_from_mapping,
)
from orchestrator.model import UsageError

# the shapes of a record's fields (whole-value patterns), for request models that must accept what the
# catalogue accepts: the service's
RECORD_PATTERNS = PATTERNS


@contextmanager
def _as_api_errors() -> Iterator[None]:
    try:
        yield
    except UnknownRecord as exc:
        raise NotFound(str(exc)) from None
    except InvalidRecord as exc:
        raise Refused(str(exc)) from None
    except CatalogueError as exc:
        raise UsageError(str(exc)) from None


class Catalogued(Core):
    """Listed before Deploying and Running in Orchestrator's bases: deploy and run first check that every
    `catalogue:ID` input names a record (refused before anything runs), then do their work."""

    catalogue_factory: Callable[[Path], Catalogue] = staticmethod(lambda home: YamlCatalogue(catalogue_path(home)))

    def _catalogue(self) -> Catalogue:
        return self.catalogue_factory(self.home)

    def catalogue(self) -> list[Record]:
        """Every record, in the order they were added."""
        with _as_api_errors():
            return self._catalogue().records()

    def catalogue_record(self, record_id: str) -> Record:
        with _as_api_errors():
            return self._catalogue().record(record_id)

    def catalogue_add(self, path_or_mapping: str | Path | Mapping[str, Any]) -> Record:
        """Add a record from a YAML/JSON file or a mapping; `created` defaults to now (UTC)."""
        with _as_api_errors():
            if isinstance(path_or_mapping, Mapping):
                record = record_from_mapping(path_or_mapping, "the record")
            else:
                record = record_from_mapping(read_record_file(path_or_mapping), str(path_or_mapping))
            return self._catalogue().add(record)

    def catalogue_remove(self, record_id: str) -> Record:
        """Forget a record; the data stays where it is."""
        with _as_api_errors():
            return self._catalogue().remove(record_id)

    def refuse_unknown_catalogue_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Refused: an input `catalogue:ID` whose record is not in the catalogue (the stage-in would fail)."""
        wanted = {name: catalogue_id(value) for name, value in inputs.items()}
        wanted = {name: record_id for name, record_id in wanted.items() if record_id is not None}
        if not wanted:
            return
        with _as_api_errors():
            catalogue = self._catalogue()
            known = {record.id for record in catalogue.records()}
        missing = [f"input '{name}': catalogue:{record_id}: no record '{record_id}' in the catalogue "
                   f"{catalogue.describe()}" for name, record_id in wanted.items() if record_id not in known]
        if missing:
            raise Refused("; ".join(missing) + " (orch catalogue list)")

    def deploy(self, name: str, path: str | None, inputs: Mapping[str, Any], **options: Any) -> Result:
        self.refuse_unknown_catalogue_inputs(inputs)
        return super().deploy(name, path, inputs, **options)

    def run(self, name: str, workflow: str | None, inputs: Mapping[str, Any], **options: Any) -> Result:
        self.refuse_unknown_catalogue_inputs(inputs)
        return super().run(name, workflow, inputs, **options)


