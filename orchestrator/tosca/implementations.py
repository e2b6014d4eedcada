"""An operation's implementation (TOSCA 1.3, operation implementation definition): a path, the name of one of
the node's artifacts, an artifact definition, or `primary`/`dependencies` made of any of those, with
`timeout` and `operation_host`. Read here into the files orch will run and ship."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.model import Artifact
from orchestrator.tosca.types import written_form

IMPLEMENTATION_KEYWORDS = {"primary", "dependencies", "timeout", "operation_host"}
ARTIFACT_KEYWORDS = {"file", "type", "repository", "description", "deploy_path", "artifact_version",
                     "checksum", "checksum_algorithm", "properties"}


@dataclass(frozen=True)
class ArtifactRef:
    """One file of an implementation: where it is and what the template called it."""

    file: str  # absolute path, URL, or a path inside `repository`
    written: str  # as the template wrote it (a path, or an artifact's name)
    type: str | None = None
    repository: str | None = None
    artifact: str | None = None  # the node's artifact it names, if it names one


@dataclass(frozen=True)
class Implementation:
    primary: ArtifactRef | None
    dependencies: tuple[ArtifactRef, ...] = ()
    operation_host: Any = None
    timeout: Any = None


def parse_implementation(raw: Any, artifacts: Mapping[str, Artifact], where: str,
                         problem: Callable[[str, str], None]) -> Implementation | None:
    """None when a problem was reported: an operation whose file orch cannot find must not become a no-op."""
    if raw is None:
        return Implementation(None)
    if isinstance(raw, str):
        return Implementation(_ref(raw, artifacts))
    if not isinstance(raw, dict):
        problem(where, "implementation must be a playbook path, an artifact's name or an artifact definition")
        return None
    where = f"{where}.implementation"
    if "file" in raw and "primary" not in raw:  # a bare artifact definition (as Alien4Cloud writes it)
        primary = _definition(raw, where, problem)
        return None if primary is None else Implementation(primary)
    unknown = sorted(map(str, set(raw) - IMPLEMENTATION_KEYWORDS))
    if unknown:
        problem(where, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (an implementation "
                       f"has {', '.join(sorted(IMPLEMENTATION_KEYWORDS))}, or is an artifact definition with a "
                       "'file')")
        return None
    if "primary" not in raw:
        problem(where, "an implementation mapping needs a 'primary' artifact (or a 'file')")
        return None
    primary = _artifact(raw["primary"], artifacts, f"{where}.primary", problem)
    dependencies = raw.get("dependencies")
    if dependencies is not None and not isinstance(dependencies, list):
        problem(f"{where}.dependencies", "must be a list of artifacts (paths, artifact names "
                                                        "or artifact definitions)")
        return None
    refs = [_artifact(d, artifacts, f"{where}.dependencies[{i}]", problem)
            for i, d in enumerate(dependencies or [])]
    if primary is None or any(r is None for r in refs):
        return None
    return Implementation(primary, tuple(r for r in refs if r is not None), raw.get("operation_host"),
                          raw.get("timeout"))


def _artifact(raw: Any, artifacts: Mapping[str, Artifact], where: str,
              problem: Callable[[str, str], None]) -> ArtifactRef | None:
    if isinstance(raw, str):
        return _ref(raw, artifacts)
    if isinstance(raw, dict):
        return _definition(raw, where, problem)
    problem(where, "an artifact is a path, the name of one of the node's artifacts, or an artifact definition")
    return None


def _ref(path: str, artifacts: Mapping[str, Artifact]) -> ArtifactRef:
    """A string: the node's artifact of that name (TOSCA 1.3), else a path."""
    written = str(written_form(path))
    artifact = artifacts.get(written)
    if artifact is not None:
        return ArtifactRef(artifact.file, written, artifact.type, artifact.repository, artifact.name)
    return ArtifactRef(str(path), written)


def _definition(raw: Mapping[str, Any], where: str, problem: Callable[[str, str], None]) -> ArtifactRef | None:
    unknown = sorted(map(str, set(raw) - ARTIFACT_KEYWORDS))
    if unknown:
        problem(where, f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in an artifact "
                       f"definition (known: {', '.join(sorted(ARTIFACT_KEYWORDS))})")
        return None
    file = raw.get("file")
    if not isinstance(file, str):
        problem(where, "an artifact definition needs a 'file'")
        return None
    repository = raw.get("repository")
    return ArtifactRef(str(file), str(written_form(file)), raw.get("type") if isinstance(raw.get("type"), str)
                       else None, repository if isinstance(repository, str) else None)
