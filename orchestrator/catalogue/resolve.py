"""A data pipeline's `catalogue:ID` source, resolved to a place its mover can read; and a moved result
registered as a new record. Pure functions over a Catalogue (the port), so both movers' playbooks and
any DAG use the same rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from orchestrator.catalogue.record import (
    CatalogueError,
    DuplicateRecord,
    Record,
    UnknownRecord,
    record_from_mapping,
)
from orchestrator.catalogue.store import Catalogue

PREFIX = "catalogue:"
UNSPECIFIED_LICENCE = "unspecified"


def catalogue_id(source: Any) -> str | None:
    """ID of a `catalogue:ID` source, else None (any other source is a place already)."""
    if isinstance(source, str) and source.startswith(PREFIX):
        return source[len(PREFIX):]
    return None


def resolve_source(source: Any, node: str, catalogue: Catalogue | None,
                   place_problem: Callable[[str], str]) -> dict[str, str]:
    """{source, id, sha256, problem}: for `catalogue:ID`, the record's first location that `place_problem`
    finds nothing wrong with (the mover can read it); any other source is given back as it is. problem
    names the node and the id; the other values are then empty."""
    record_id = catalogue_id(source)
    if record_id is None:
        return {"source": source, "id": "", "sha256": "", "problem": ""}
    failed = {"source": "", "id": record_id, "sha256": ""}
    if catalogue is None:
        return {**failed, "problem": f"{node}: source {source}: orch's catalogue is not known to this operation"}
    try:
        record = catalogue.record(record_id)
    except UnknownRecord as exc:
        return {**failed, "problem": f"{node}: source {source}: {exc} (orch catalogue list)"}
    except CatalogueError as exc:
        return {**failed, "problem": f"{node}: source {source}: {exc}"}
    why = {}
    for location in record.locations:
        problem = place_problem(location)
        if not problem:
            return {"source": location, "id": record.id, "sha256": record.sha256, "problem": ""}
        why[location] = problem
    reasons = "; ".join(f"{place}: {problem}" for place, problem in why.items())
    return {**failed, "problem": f"{node}: source {source}: no location of the record can be read here ({reasons})"}


def result_id(deployment: str, node: str, checksum: str) -> str:
    """`<deployment>-<node>-<12 digits of the checksum>`: the same result of the same node is one record."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{deployment}-{node}").lstrip("._-") or "result"
    return f"{base[:115]}-{checksum[:12]}"


def register_result(catalogue: Catalogue, *, deployment: str, node: str, target: str, size: int, checksum: str,
                    source: str = "", title: str = "", now: str | None = None) -> Record:
    """Record what a stage-out delivered to `target`. Registering the same data again (a resumed or repeated
    run) keeps one record and adds `target` to its locations if it is a new place."""
    record = record_from_mapping({
        "id": result_id(deployment, node, checksum),
        "title": title or f"{node} of {deployment}",
        "locations": [target], "size": size, "sha256": checksum, "licence": UNSPECIFIED_LICENCE,
        "keywords": [deployment, node], "created_by": deployment,
        "description": f"Staged out by {node} of deployment {deployment}" + (f" from {source}" if source else ""),
    }, f"{node}: the result to register", now=now)
    try:
        return catalogue.add(record)
    except DuplicateRecord:
        existing = catalogue.record(record.id)
        if existing.sha256 != record.sha256:
            raise CatalogueError(f"{node}: a record '{record.id}' of other data is in the catalogue "
                                 f"{catalogue.describe()}") from None
        return catalogue.add_location(record.id, target)
