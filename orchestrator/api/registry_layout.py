"""A registry's layout, read at one version: its workflows, their topology, site file and versions.

    <registry>/<workflow>/workflow.yaml   optional: description, topology, site (paths inside the folder)
    <registry>/<workflow>/topology.yaml   (or .yml, a CSAR layout's TOSCA-Metadata/TOSCA.meta, or one .csar)
    <registry>/<workflow>/...             its playbooks, types, application, requirements, a site file

A source is a plain folder (one version: its working tree) or a git repository (a version is a commit;
a workflow's versions are the commits that changed its folder). Git runs on the local repository alone,
from argv lists, with every transport protocol refused (never the network); a user's revision is refused
when it starts with '-' and reaches git after --end-of-options, and only a checked commit id goes further.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from orchestrator.model import UsageError
from orchestrator.tosca.yamlio import parse_yaml_text

WORKING_TREE = "working tree"
META = "workflow.yaml"
META_KEYS = ("description", "topology", "site")
MAX_VERSIONS = 20  # listed per workflow; a deploy takes any commit
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
GIT_TIMEOUT = 300


@dataclass(frozen=True)
class WorkflowVersion:
    revision: str  # a commit id, or "working tree"
    committed: float | None  # the commit's time, seconds since the epoch
    subject: str


@dataclass(frozen=True)
class RegistryWorkflow:
    name: str
    description: str
    topology: str  # inside the workflow's folder
    site: str | None  # the default site file, inside the workflow's folder
    versions: tuple[WorkflowVersion, ...]  # newest first
    problem: str | None = None  # why it cannot be deployed as it is


@dataclass(frozen=True)
class Registry:
    name: str
    source: str
    kind: str  # "git" or "folder"
    workflows: tuple[RegistryWorkflow, ...]
    problem: str | None = None  # why its workflows cannot be read now


class Tree(Protocol):
    """A registry's files at one version; paths are relative, with '/'."""

    def folders(self) -> list[str]: ...
    def names(self, folder: str) -> list[str]: ...  # the files directly in a folder
    def exists(self, path: str) -> bool: ...
    def read(self, path: str) -> str: ...


class FolderTree:
    def __init__(self, root: Path):
        self.root = root

    def folders(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def names(self, folder: str) -> list[str]:
        return sorted(p.name for p in (self.root / folder).iterdir() if p.is_file())

    def exists(self, path: str) -> bool:
        return (self.root / path).is_file()

    def read(self, path: str) -> str:
        return (self.root / path).read_text(encoding="utf-8", errors="replace")


class _GitTree:
    def __init__(self, git: _Git, commit: str):
        self.git = git
        listing = git.run("ls-tree", "-r", "-z", "--full-tree", commit).split("\0")
        entries = (e.partition("\t") for e in listing if e)
        self.blobs = {path: meta.split()[2] for meta, _, path in entries if meta.split()[1] == "blob"}

    def folders(self) -> list[str]:
        return sorted({p.split("/")[0] for p in self.blobs if "/" in p and not p.startswith(".")})

    def names(self, folder: str) -> list[str]:
        return sorted(p[len(folder) + 1:] for p in self.blobs if p.startswith(f"{folder}/") and
                      "/" not in p[len(folder) + 1:])

    def exists(self, path: str) -> bool:
        return path in self.blobs

    def read(self, path: str) -> str:
        return self.git.run("cat-file", "blob", self.blobs[path])


class _Folder:
    kind = "folder"

    def __init__(self, root: Path, registry: str):
        self.root, self.registry = root, registry

    def revision(self, version: str | None) -> str:
        if version not in (None, WORKING_TREE):
            raise UsageError(f"registry '{self.registry}' is a folder, not a git repository: its one version is "
                             f"its working tree, so there is no version '{version}' (leave --version out)")
        return WORKING_TREE

    def tree(self, revision: str) -> Tree:
        return FolderTree(self.root)

    def versions(self, revision: str, folder: str) -> tuple[WorkflowVersion, ...]:
        return (WorkflowVersion(WORKING_TREE, None, ""),)

    def export(self, revision: str, into: Path) -> None:
        if into.resolve().is_relative_to(self.root.resolve()):
            raise UsageError(f"registry '{self.registry}' holds orch's home ({into}): a deploy cannot copy it "
                             "into itself; keep $ORCH_HOME out of the registry's folder")
        shutil.copytree(self.root, into, symlinks=True, dirs_exist_ok=True)


class _Git:
    kind = "git"

    def __init__(self, root: Path, registry: str):
        self.root, self.registry = root, registry

    def run(self, *args: str) -> str:
        result = subprocess.run(_git_argv(self.root, *args), capture_output=True, encoding="utf-8",
                                errors="replace", env=_git_env(), timeout=GIT_TIMEOUT, check=False)
        if result.returncode != 0:
            raise UsageError(f"registry '{self.registry}': git {args[0]} failed: "
                             f"{result.stderr.strip() or result.returncode}")
        return result.stdout

    def revision(self, version: str | None) -> str:
        """The commit a version names, checked: a user's string reaches git only as a revision."""
        if version is not None and (not version or version.startswith("-") or len(version) > 256
                                    or any(c.isspace() or not c.isprintable() for c in version)):
            raise UsageError(f"registry '{self.registry}': '{version}' is not a revision (a commit id, a branch "
                             "or a tag; never starting with '-')")
        wanted = version if version is not None else "HEAD"
        result = subprocess.run(_git_argv(self.root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                          f"{wanted}^{{commit}}"),
                                capture_output=True, text=True, env=_git_env(), timeout=GIT_TIMEOUT, check=False)
        commit = result.stdout.strip()
        if result.returncode != 0 or not COMMIT.fullmatch(commit):
            if version is None:
                raise UsageError(f"registry '{self.registry}' has no commit yet")
            raise UsageError(f"registry '{self.registry}' has no revision '{version}'")
        return commit

    def tree(self, revision: str) -> Tree:
        return _GitTree(self, revision)

    def versions(self, revision: str, folder: str) -> tuple[WorkflowVersion, ...]:
        lines = self.run("log", f"--max-count={MAX_VERSIONS}", "--format=%H%x1f%ct%x1f%s", revision, "--",
                         f"{folder}/").splitlines()
        return tuple(WorkflowVersion(commit, float(when), subject)
                     for commit, when, subject in (line.split("\x1f", 2) for line in lines if line))

    def export(self, revision: str, into: Path) -> None:
        """The commit's whole tree, through tarfile's 'data' filter (nothing lands outside `into`)."""
        with tempfile.TemporaryFile() as errors:
            process = subprocess.Popen(_git_argv(self.root, "archive", "--format=tar", revision),
                                       stdout=subprocess.PIPE, stderr=errors, env=_git_env())
            try:
                with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                    archive.extractall(into, filter="data")
            except tarfile.TarError as exc:
                process.kill()
                raise UsageError(f"registry '{self.registry}': the archive of {revision} is unreadable: {exc}") \
                    from None
            finally:
                process.stdout.close()
                returncode = process.wait(timeout=GIT_TIMEOUT)
            if returncode != 0:
                errors.seek(0)
                raise UsageError(f"registry '{self.registry}': git archive {revision} failed: "
                                 f"{errors.read().decode(errors='replace').strip()}")


def _git_argv(root: Path, *args: str) -> list[str]:
    # no transport protocol at all: a partial clone's lazy fetch cannot reach the network either
    return ["git", "-c", "protocol.allow=never", "-C", str(root), *args]


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # GIT_DIR & co. would redirect git
    env.update(GIT_TERMINAL_PROMPT="0", GIT_NO_LAZY_FETCH="1", GIT_OPTIONAL_LOCKS="0")
    return env


def open_source(name: str, root: Path) -> _Folder | _Git:
    """A git registry when the folder is the top of a git work tree (it has .git) or a bare repository;
    a folder inside some other repository is a plain folder: its work tree is what it holds."""
    if not root.is_dir():
        raise UsageError(f"registry '{name}': its folder {root} is gone")
    bare = (root / "HEAD").is_file() and (root / "objects").is_dir() and (root / "refs").is_dir()
    if not (root / ".git").exists() and not bare:
        return _Folder(root, name)
    if shutil.which("git") is None:
        raise UsageError(f"registry '{name}' is a git repository and git is not installed")
    return _Git(root, name)


def read_registry(name: str, root: Path) -> Registry:
    kind = "folder"
    try:
        source = open_source(name, root)
        kind = source.kind
        revision = source.revision(None)
        tree = source.tree(revision)
        workflows = (describe(tree, folder, source.versions(revision, folder)) for folder in tree.folders())
        return Registry(name, str(root), kind, tuple(w for w in workflows if w is not None))
    except (UsageError, OSError) as exc:
        return Registry(name, str(root), kind, (), str(exc))


def describe(tree: Tree, folder: str, versions: tuple[WorkflowVersion, ...]) -> RegistryWorkflow | None:
    """The workflow a folder holds (None: no topology, so not a workflow), with what is wrong with it."""
    meta, problem = _read_meta(tree, f"{folder}/{META}") if tree.exists(f"{folder}/{META}") else ({}, None)
    topology = meta.get("topology")
    if topology is None:
        topology, found_problem = _found_topology(tree, folder)
        problem = problem or found_problem
        if topology is None and not tree.exists(f"{folder}/{META}") and not found_problem:
            return None
    elif not tree.exists(f"{folder}/{topology}"):
        problem = problem or f"{folder}/{META}: topology: no file {topology} in the workflow's folder"
    site = meta.get("site")
    if site is not None and not tree.exists(f"{folder}/{site}"):
        problem = problem or f"{folder}/{META}: site: no file {site} in the workflow's folder"
    if topology is None:
        problem = problem or f"{folder}: no topology (topology.yaml, a CSAR layout, or 'topology:' in {META})"
    description = meta.get("description") or _topology_description(tree, f"{folder}/{topology}")
    return RegistryWorkflow(folder, description, topology or "", site, versions, problem)


def _topology_description(tree: Tree, path: str) -> str:
    if not path.endswith((".yaml", ".yml")) or not tree.exists(path):
        return ""
    document, _problems = parse_yaml_text(tree.read(path), path)
    described = document.get("description") if isinstance(document, dict) else None
    return " ".join(described.split()) if isinstance(described, str) else ""


def _read_meta(tree: Tree, path: str) -> tuple[dict[str, str], str | None]:
    document, problems = parse_yaml_text(tree.read(path), path)
    if problems:
        return {}, "; ".join(str(p) for p in problems)
    if document is None:
        return {}, None
    if not isinstance(document, dict):
        return {}, f"{path}: must be a mapping of {', '.join(META_KEYS)}"
    meta = {}
    for key, value in document.items():
        if key not in META_KEYS:
            return {}, f"{path}: {key}: unknown (known: {', '.join(META_KEYS)})"
        if not isinstance(value, str) or not value.strip():
            return {}, f"{path}: {key}: must be a non-empty string"
        if key != "description" and not _inside(value):
            return {}, f"{path}: {key}: '{value}' must be a relative path inside the workflow's folder"
        meta[key] = value if key == "description" else str(PurePosixPath(value))
    return meta, None


def _found_topology(tree: Tree, folder: str) -> tuple[str | None, str | None]:
    names = tree.names(folder)
    for candidate in ("topology.yaml", "topology.yml"):
        if candidate in names:
            return candidate, None
    meta = f"{folder}/TOSCA-Metadata/TOSCA.meta"
    if tree.exists(meta):
        for line in tree.read(meta).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Entry-Definitions":
                entry = value.strip()
                if not _inside(entry) or not tree.exists(f"{folder}/{entry}"):
                    return None, f"{meta}: Entry-Definitions '{entry}' is not a file of the workflow's folder"
                return str(PurePosixPath(entry)), None
        return None, f"{meta}: has no Entry-Definitions"
    archives = [n for n in names if n.lower().endswith((".csar", ".zip"))]
    return (archives[0], None) if len(archives) == 1 else (None, None)


def _inside(path: str) -> bool:
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and "\\" not in path and str(pure) != "."
