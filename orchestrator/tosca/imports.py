"""Imports: every type file a template pulls in, read by us first so that problems name the file
and remote imports are refused before tosca-parser would fetch them."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.model import Problem
from orchestrator.tosca.yamlio import parse_yaml_text, read_yaml

REMOTE_PREFIXES = ("http://", "https://")
SUPPORTED_VERSIONS = ("tosca_simple_yaml_1_0", "tosca_simple_yaml_1_2", "tosca_simple_yaml_1_3")
NFV_PROFILE = "the TOSCA NFV profile"


def version_problem(version: Any) -> str | None:
    """Why orch does not read a template of this tosca_definitions_version, or None."""
    if version in SUPPORTED_VERSIONS:
        return None
    if isinstance(version, str) and "nfv" in version.lower():
        return (f"'{version}' is {NFV_PROFILE}, which is outside orch's scope: orch deploys TOSCA Simple Profile "
                f"templates ({', '.join(SUPPORTED_VERSIONS)})")
    return f"'{version}' is not supported; use one of {', '.join(SUPPORTED_VERSIONS)}"
SHIPPED_TYPES = Path(__file__).resolve().parents[2] / "tosca_types"
ORCH_TYPES_FILE = SHIPPED_TYPES / "orch-types.yaml"
# TOSCA 1.3's normative types that tosca-parser (which knows 1.0's) lacks: imported first by every template
NORMATIVE_TYPES_FILE = Path(__file__).resolve().with_name("normative-1.3.yaml")


@dataclass(frozen=True)
class ImportedFile:
    location: str  # absolute path, or URL when remote imports are allowed
    document: dict


def import_location(entry: Any) -> str | None:
    """The file an `imports` entry names, whatever form it was written in."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        if "file" in entry and isinstance(entry["file"], str):
            return entry["file"]
        if len(entry) == 1:
            value = next(iter(entry.values()))
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("file"), str):
                return value["file"]
    return None


def collect_imports(document: dict, template_file: str, allow_remote: bool,
                    confine: str | None = None) -> tuple[list[ImportedFile], list[Problem]]:
    """Read the template's imports, depth first, each file once. Returns them in load order.
    confine: the folder a CSAR was unpacked into; a local import must not leave it."""
    seen: set[str] = set()
    files: list[ImportedFile] = []
    problems: list[Problem] = []

    def visit(doc: dict, owner: str) -> None:
        entries = doc.get("imports") or []
        if not isinstance(entries, list):
            problems.append(Problem(owner, "imports", "must be a list"))
            return
        for i, entry in enumerate(entries):
            place = f"imports[{i}]"
            location = import_location(entry)
            if location is None:
                problems.append(Problem(owner, place, f"cannot tell which file this import names: {entry!r}"))
                continue
            local = not location.startswith(REMOTE_PREFIXES) and not owner.startswith(REMOTE_PREFIXES)
            if confine is not None and local and location.startswith("/") \
                    and os.path.isfile(os.path.join(confine, location.lstrip("/"))):
                location = os.path.join(confine, location.lstrip("/"))  # a file of the CSAR, from its root
            if confine is not None and local and not _inside(os.path.realpath(Path(owner).parent / location), confine):
                problems.append(Problem(owner, place, f"imported file '{location}' leaves the archive; "
                                        "a CSAR's imports must be files it carries"))
                continue
            resolved, doc_or_none, entry_problems = _read_import(location, owner, place, allow_remote)
            problems.extend(entry_problems)
            if resolved is None or resolved in seen:
                continue
            seen.add(resolved)
            if doc_or_none is None:
                continue
            visit(doc_or_none, resolved)
            files.append(ImportedFile(resolved, doc_or_none))

    visit(document, template_file)
    for shipped in (ORCH_TYPES_FILE, NORMATIVE_TYPES_FILE):
        if str(shipped) not in seen:
            doc, extra = read_yaml(shipped, "orch's type file")
            problems.extend(extra)
            if doc is not None:
                files.insert(0, ImportedFile(str(shipped), doc))
    return files, problems


def _read_import(location: str, owner: str, place: str, allow_remote: bool):
    if location.startswith(REMOTE_PREFIXES) or owner.startswith(REMOTE_PREFIXES):
        url = location if location.startswith(REMOTE_PREFIXES) else owner.rsplit("/", 1)[0] + "/" + location
        if not allow_remote:
            return None, None, [Problem(owner, place, f"remote import '{url}' refused; "
                                        "pass --allow-remote-imports to fetch it")]
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # the user allowed it
                text = response.read(10 * 1024 * 1024).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return None, None, [Problem(owner, place, f"cannot fetch '{url}': {exc}")]
        doc, problems = parse_yaml_text(text, url)
        return url, _as_types_document(doc, url, problems), problems
    path = (Path(owner).parent / location).resolve()
    if not path.exists():
        return None, None, [Problem(owner, place, f"imported file '{location}' does not exist (looked for {path})")]
    doc, problems = read_yaml(path, "imported file")
    return str(path), _as_types_document(doc, str(path), problems), problems


def _as_types_document(doc: Any, name: str, problems: list[Problem]) -> dict | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        problems.append(Problem(name, "", "an imported file must be a YAML mapping of type definitions"))
        return None
    version = doc.get("tosca_definitions_version")
    if version is not None and version_problem(version):
        problems.append(Problem(name, "tosca_definitions_version", str(version_problem(version))))
        return None
    return doc


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder
