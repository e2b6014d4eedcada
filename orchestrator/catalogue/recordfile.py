"""A record written by a person: a YAML (or JSON) file holding one record's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.catalogue.record import InvalidRecord

MAX_BYTES = 1024 * 1024


def read_record_file(path: str | Path) -> Any:
    """The mapping in the file (checked later by record_from_mapping), or InvalidRecord naming the file."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InvalidRecord(where, [f"cannot read it: {exc.strerror or type(exc).__name__}"]) from None
    if len(raw) > MAX_BYTES:
        raise InvalidRecord(where, [f"larger than {MAX_BYTES} bytes: a record file holds one record"])
    try:
        return yaml.load(raw.decode("utf-8"), Loader=yaml.CSafeLoader)
    except UnicodeDecodeError:
        raise InvalidRecord(where, ["not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidRecord(where, [f"not YAML{at}: {getattr(exc, 'problem', None) or exc}"]) from None
