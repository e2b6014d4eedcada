"""orch's data catalogue: FAIR-ish records of datasets (id, title, locations, size, sha256, licence,
keywords, who made it and when), kept behind a port (store.Catalogue) in a YAML file by default
($ORCH_HOME/catalogue.yaml, or $ORCH_CATALOGUE). A data pipeline's source `catalogue:ID` is resolved to a
record's location before its mover runs; a stage-out can register its result (resolve.py).

Nothing here knows the layers above (the API, the CLI, the service use it through orchestrator.api)."""

from __future__ import annotations

from orchestrator.catalogue.digest import dataset_digest, manifest
from orchestrator.catalogue.record import (
    PATTERNS,
    CatalogueError,
    DuplicateRecord,
    InvalidRecord,
    Record,
    UnknownRecord,
    location_problem,
    record_from_mapping,
)
from orchestrator.catalogue.recordfile import read_record_file
from orchestrator.catalogue.resolve import PREFIX, catalogue_id, register_result, resolve_source, result_id
from orchestrator.catalogue.store import Catalogue, catalogue_path
from orchestrator.catalogue.yamlfile import YamlCatalogue

__all__ = [
    "PATTERNS",
    "PREFIX",
    "Catalogue",
    "CatalogueError",
    "DuplicateRecord",
    "InvalidRecord",
    "Record",
    "UnknownRecord",
    "YamlCatalogue",
    "catalogue_id",
    "catalogue_path",
    "dataset_digest",
    "location_problem",
    "manifest",
    "read_record_file",
    "record_from_mapping",
    "register_result",
    "resolve_source",
    "result_id",
]
