"""A catalogue record: FAIR-ish metadata of one dataset, and its validation.

A record is read from a file a person wrote (`orch catalogue add dataset.yaml`), a REST body or the
catalogue's own file, so every problem names where the record came from and the field, and all of them are
reported at once. Values are data: nothing here is ever given to a shell or a template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The shapes of the fields, as patterns a whole value must match: the REST API's request model declares the
# same ones (api/catalogue.py hands them on), so what its schema allows the catalogue accepts.
# An id is safe as a file name and a URL path segment, and holds no ':' so that `catalogue:ID` reads one way.
ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
# one line of text, not blank
LINE = r"[^\x00-\x1f\x7f]*[^ \x00-\x1f\x7f][^\x00-\x1f\x7f]*"
TEXT = r"[^\x00]*"
# the places a mover understands (filter_plugins/eflows.py `data_place`): a URL, HOST:/path, a controller path
LOCATION = (r"(https?://[^/ \x00-\x1f\x7f]+(/[^\x00-\x1f\x7f]*)?"
            r"|[A-Za-z0-9_.-]+:/[^\x00-\x1f\x7f]*|/[^\x00-\x1f\x7f]*)")
SHA256 = r"[0-9a-f]{64}"
PATTERNS = {"id": ID, "line": LINE, "text": TEXT, "location": LOCATION, "sha256": SHA256}
_ID, _LINE, _TEXT, _LOCATION, _SHA256 = (re.compile(p) for p in (ID, LINE, TEXT, LOCATION, SHA256))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 4000

REQUIRED = ("id", "title", "locations", "size", "sha256", "licence", "keywords", "created_by")
OPTIONAL = ("created", "description")
FIELDS = REQUIRED + OPTIONAL


class CatalogueError(Exception):
    """The catalogue cannot do what was asked; the message says why, naming the file or the record."""


class InvalidRecord(CatalogueError):
    def __init__(self, where: str, problems: list[str]):
        self.where = where
        self.problems = problems
        super().__init__(f"{where}: " + "; ".join(problems))


class UnknownRecord(CatalogueError):
    def __init__(self, record_id: str, where: str):
        self.record_id = record_id
        super().__init__(f"no record '{record_id}' in the catalogue {where}")


class DuplicateRecord(CatalogueError):
    def __init__(self, record_id: str, where: str):
        self.record_id = record_id
        super().__init__(f"a record '{record_id}' is already in the catalogue {where} (remove it first)")


@dataclass(frozen=True)
class Record:
    """One dataset. sha256 is the dataset's manifest checksum (see orchestrator/catalogue/digest.py): what a
    data move's `checksum` attribute holds, so a record checks against the data a move brings."""

    id: str
    title: str
    locations: tuple[str, ...]
    size: int
    sha256: str
    licence: str
    keywords: tuple[str, ...]
    created_by: str
    created: str
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain values in the fields' order (lists, not tuples): what the catalogue file and JSON hold."""
        data: dict[str, Any] = {
            "id": self.id, "title": self.title, "locations": list(self.locations), "size": self.size,
            "sha256": self.sha256, "licence": self.licence, "keywords": list(self.keywords),
            "created_by": self.created_by, "created": self.created}
        if self.description:
            data["description"] = self.description
        return data

    def with_location(self, location: str) -> Record:
        if location in self.locations:
            return self
        return record_from_mapping({**self.as_dict(), "locations": [*self.locations, location]}, f"record {self.id}")


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def record_from_mapping(data: Any, where: str, *, now: str | None = None) -> Record:
    """The record `data` describes, or InvalidRecord listing every problem, each with its field.
    `created` may be missing (then `now`, else the current UTC time); every other field but `description`
    is required."""
    if not isinstance(data, Mapping):
        raise InvalidRecord(where, [f"a record is a mapping of fields ({', '.join(REQUIRED)}), "
                                    f"not {type(data).__name__}"])
    problems: list[str] = []
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        hint = " (the field is spelled 'licence')" if "license" in unknown else ""
        problems.append(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}{hint} "
                        f"(known: {', '.join(FIELDS)})")
    problems += [f"{name}: missing (required)" for name in REQUIRED if name not in data]
    values: dict[str, Any] = {}
    for name, check in _CHECKS.items():
        if name not in data:
            continue
        value, problem = check(data[name])
        if problem:
            problems.append(f"{name}: {problem}")
        else:
            values[name] = value
    if problems:
        raise InvalidRecord(where, problems)
    values.setdefault("created", now or utc_now())
    values.setdefault("description", "")
    return Record(**values)


# -- one check per field: (value, "") or (None, why) ------------------------------------------------------------

def _text(value: Any, *, limit: int = 500) -> tuple[Any, str]:
    if not isinstance(value, str) or not _LINE.fullmatch(value):
        return None, ("must be one line of text (no control characters)" if isinstance(value, str) and value.strip()
                      else "must be non-empty text")
    if len(value) > limit:
        return None, f"longer than {limit} characters"
    return value, ""


def _description(value: Any) -> tuple[Any, str]:
    if value is None:
        return "", ""
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        return None, "must be text (without NUL characters)"
    if len(value) > MAX_TEXT:
        return None, f"longer than {MAX_TEXT} characters"
    return (value if value.strip() else ""), ""


def _id(value: Any) -> tuple[Any, str]:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        return None, (f"{value!r} is not an id: 1 to 128 of A-Z a-z 0-9 _ . - "
                      "(starting with a letter or digit; no ':')")
    return value, ""


def location_problem(place: Any) -> str:
    """Why `place` is not a place a mover can read, or ''."""
    if not isinstance(place, str) or not place:
        return "a location is non-empty text"
    if _CONTROL.search(place):
        return f"{place!r} holds control characters"
    if _LOCATION.fullmatch(place):
        return ""
    return f"{place!r} is not a URL (http/https), HOST:/path or an absolute path"


def _locations(value: Any) -> tuple[Any, str]:
    if not isinstance(value, list) or not value:
        return None, "must be a list of at least one place (a URL, HOST:/path or an absolute path)"
    problems = [f"[{i}] {p}" for i, place in enumerate(value) if (p := location_problem(place))]
    if problems:
        return None, "; ".join(problems)
    if len(set(value)) != len(value):
        return None, "lists a place twice"
    return tuple(value), ""


def _size(value: Any) -> tuple[Any, str]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None, f"{value!r} is not a size in bytes (an integer, 0 or more)"
    return value, ""


def _sha256(value: Any) -> tuple[Any, str]:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        return None, f"{value!r} is not a sha256 (64 lowercase hexadecimal digits)"
    return value, ""


def _keywords(value: Any) -> tuple[Any, str]:
    if not isinstance(value, list):
        return None, "must be a list of words (it may be empty: [])"
    bad = [f"[{i}]" for i, word in enumerate(value) if _text(word, limit=100)[1]]
    if bad:
        return None, f"{', '.join(bad)}: each keyword is non-empty text of one line, at most 100 characters"
    return tuple(value), ""


def _created(value: Any) -> tuple[Any, str]:
    # YAML reads an unquoted timestamp as a datetime: taken as it is, if it is UTC
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None, f"{value!r} is not an ISO 8601 time (2024-05-01T12:00:00Z)"
    if when.utcoffset() is None or when.utcoffset().total_seconds() != 0:
        return None, f"{value!r} must be in UTC (ending in Z or +00:00)"
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z"), ""


_CHECKS = {
    "id": _id,
    "title": _text,
    "locations": _locations,
    "size": _size,
    "sha256": _sha256,
    "licence": lambda v: _text(v, limit=200),
    "keywords": _keywords,
    "created_by": lambda v: _text(v, limit=200),
    "created": _created,
    "description": _description,
}
