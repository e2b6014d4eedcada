"""The catalogue as one YAML file (JSON when its name ends in .json), read and written whole.

A write takes an exclusive lock (flock on a sibling `.lock` file, so the catalogue file itself can be
replaced), reads the records again under it, and writes a temporary file beside the catalogue that is then
renamed over it: a reader sees the old file or the new one, never half of one, and two writers, in one
process or several, lose nothing. Reads take no lock (a rename is atomic).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from orchestrator.catalogue.record import (
    CatalogueError,
    DuplicateRecord,
    InvalidRecord,
    Record,
    UnknownRecord,
    record_from_mapping,
)

MAX_BYTES = 64 * 1024 * 1024
HEADER = "# orch's data catalogue: one record per dataset (orch catalogue list | show ID | add FILE | remove ID)\n"


class YamlCatalogue:
    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    # -- reading ---------------------------------------------------------------------------------

    def records(self) -> list[Record]:
        try:
            with self.path.open("rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CatalogueError(f"cannot read the catalogue {self.path}: {exc.strerror}") from None
        if len(raw) > MAX_BYTES:
            raise CatalogueError(f"{self.path}: larger than {MAX_BYTES} bytes")
        try:
            data = yaml.load(raw.decode("utf-8"), Loader=yaml.CSafeLoader) if raw.strip() else {}
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CatalogueError(f"{self.path}: not a YAML file ({exc})") from None
        data = data or {}
        if not isinstance(data, dict) or not isinstance(data.get("records", []), list):
            raise CatalogueError(f"{self.path}: a catalogue is a mapping with a list 'records'")
        records = [record_from_mapping(item, f"{self.path}: records[{i}]")
                   for i, item in enumerate(data.get("records") or [])]
        seen: set[str] = set()
        for i, record in enumerate(records):
            if record.id in seen:
                raise InvalidRecord(f"{self.path}: records[{i}]", [f"id: '{record.id}' is there twice"])
            seen.add(record.id)
        return records

    def record(self, record_id: str) -> Record:
        for record in self.records():
            if record.id == record_id:
                return record
        raise UnknownRecord(record_id, str(self.path))

    # -- writing ---------------------------------------------------------------------------------

    def add(self, record: Record) -> Record:
        def change(records: list[Record]) -> list[Record]:
            if any(r.id == record.id for r in records):
                raise DuplicateRecord(record.id, str(self.path))
            return [*records, record]

        self._transact(change)
        return record

    def add_location(self, record_id: str, location: str) -> Record:
        box: dict[str, Record] = {}

        def change(records: list[Record]) -> list[Record]:
            for i, r in enumerate(records):
                if r.id == record_id:
                    box["record"] = r.with_location(location)
                    return [*records[:i], box["record"], *records[i + 1:]]
            raise UnknownRecord(record_id, str(self.path))

        self._transact(change)
        return box["record"]

    def remove(self, record_id: str) -> Record:
        box: dict[str, Record] = {}

        def change(records: list[Record]) -> list[Record]:
            kept = [r for r in records if r.id != record_id]
            if len(kept) == len(records):
                raise UnknownRecord(record_id, str(self.path))
            box["record"] = next(r for r in records if r.id == record_id)
            return kept

        self._transact(change)
        return box["record"]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CatalogueError(f"cannot lock the catalogue {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _transact(self, change: Callable[[list[Record]], list[Record]]) -> None:
        with self._locked():
            self._write(change(self.records()))

    def _write(self, records: list[Record]) -> None:
        document: dict[str, Any] = {"records": [r.as_dict() for r in records]}
        if self.path.suffix == ".json":
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        else:
            text = HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise CatalogueError(f"cannot write the catalogue {self.path}: {exc.strerror}") from None
        with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
