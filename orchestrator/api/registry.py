"""Registries: where a workflow developer publishes workflows, and deploys them from by name and version.

A registry is a folder or a local git repository (a path or a file:// URL) of workflows, one folder each
(the layout: api/registry_layout.py). A deploy copies the whole registry at the version asked (a commit;
a folder's one version is its working tree) into a fresh folder of the deployment
($ORCH_HOME/deployments/<name>/registry/): relative paths resolve there (a shared folder beside the
workflows too), later changes to the registry never reach the deployment, and undeploy removes the copy.
Registered registries (name and source) are kept in $ORCH_HOME/registries.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from orchestrator.api.deploying import Deploying
from orchestrator.api.inputs import read_inputs
from orchestrator.api.records import DeployStart, Result
from orchestrator.api.registry_layout import (
    WORKING_TREE,
    FolderTree,
    Registry,
    RegistryWorkflow,
    WorkflowVersion,
    describe,
    open_source,
    read_registry,
)
from orchestrator.engine.scheduler import Reporter
from orchestrator.model import UsageError
from orchestrator.store.base import DeploymentBusy

__all__ = ["WORKING_TREE", "Checkout", "Registering", "Registry", "RegistryWorkflow", "WorkflowVersion"]

REGISTRIES = "registries.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Checkout:
    """A workflow copied out of its registry for one deploy."""

    registry: str
    workflow: str
    revision: str
    folder: str
    topology: str
    site: str | None


class Registering(Deploying):
    def add_registry(self, source: str, name: str | None = None) -> Registry:
        """Remember a registry under a name (default: its folder's name); its workflows as read now."""
        path = _local_path(source)
        name = name if name is not None else path.name.removesuffix(".git")
        if not NAME.fullmatch(name):
            raise UsageError(f"'{name}' cannot name a registry: letters, digits, '_', '.', '-' (give --name)")
        with self._registries_locked() as entries:
            if name in entries:
                raise UsageError(f"a registry named '{name}' exists (at {entries[name]}): "
                                 "give another --name, or remove it first")
            registry = read_registry(name, path)
            if registry.problem:
                raise UsageError(registry.problem)
            entries[name] = str(path)
        return registry

    def remove_registry(self, name: str) -> None:
        """Forget a registry; the deployments made from it keep their own copies."""
        with self._registries_locked() as entries:
            if entries.pop(name, None) is None:
                raise UsageError(f"no registry named '{name}'{_known(entries)}")

    def registries(self) -> list[Registry]:
        """Every registry with its workflows and their versions (a registry that cannot be read says why)."""
        return [read_registry(name, Path(source)) for name, source in sorted(self._registry_entries().items())]

    def deploy_from_registry(self, name: str, workflow: str, inputs: Mapping[str, Any], *,
                             version: str | None = None, default_site: bool = True,
                             reporter: Reporter | None = None, cancel: threading.Event | None = None,
                             allow_remote_imports: bool = False,
                             on_checkout: Callable[[Checkout], None] | None = None,
                             on_start: Callable[[DeployStart], None] | None = None) -> Result:
        """Deploy a registry's workflow (`WORKFLOW` or `REGISTRY/WORKFLOW`) at a version (a git revision;
        the latest commit by default). The workflow's site file gives the inputs when default_site
        (the CLI: when no -i file is given); `inputs` go on top."""
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise UsageError(f"'{name}' cannot name a deployment made from a registry: it must be a plain name")
        registry_name, found = self._registry_workflow(workflow)
        source = open_source(registry_name, Path(self._registry_entries()[registry_name]))
        revision = source.revision(version)
        with self._registry_copies(name) as into:
            fresh = Path(tempfile.mkdtemp(prefix=f"{found}-{revision[:12].replace(' ', '-')}-", dir=into))
            source.export(revision, fresh)
            described = describe(FolderTree(fresh), found, ())
            if described is None or described.problem:
                why = described.problem if described else "no topology there"
                raise UsageError(f"workflow '{found}' of registry '{registry_name}' at {revision}: {why}")
            checkout = Checkout(registry_name, found, revision, str(fresh), str(fresh / found / described.topology),
                                str(fresh / found / described.site) if described.site else None)
            if on_checkout:
                on_checkout(checkout)
            given = dict(inputs)
            if default_site and checkout.site:
                given = {**read_inputs([checkout.site], []), **given}
            return self.deploy(name, checkout.topology, given, reporter=reporter, cancel=cancel,
                               allow_remote_imports=allow_remote_imports, on_start=on_start)

    # -- internals -------------------------------------------------------------------------------

    def _registry_workflow(self, workflow: str) -> tuple[str, str]:
        """(registry, workflow) for `WORKFLOW` or `REGISTRY/WORKFLOW`; only names a registry lists match."""
        entries = self._registry_entries()
        wanted_registry, _, wanted = workflow.rpartition("/")
        if wanted_registry and wanted_registry not in entries:
            raise UsageError(f"no registry named '{wanted_registry}'{_known(entries)}")
        having = []
        for registry in self.registries():
            if wanted_registry and registry.name != wanted_registry:
                continue
            if registry.problem and wanted_registry:
                raise UsageError(registry.problem)
            if any(w.name == wanted for w in registry.workflows):
                having.append(registry.name)
        if not having:
            where = f"registry '{wanted_registry}'" if wanted_registry else "any registry"
            raise UsageError(f"no workflow named '{wanted}' in {where} (orch registry list shows them)")
        if len(having) > 1:
            raise UsageError(f"workflow '{wanted}' is in several registries ({', '.join(having)}): "
                             f"say which, as REGISTRY/{wanted}")
        return having[0], wanted

    @contextlib.contextmanager
    def _registry_copies(self, name: str) -> Iterator[Path]:
        """The folder of a deployment's registry copies, for one deploy from a registry at a time. On the way
        out every copy the deployment does not read its topology from is removed: a refused, busy or
        failed-to-load deploy leaves the earlier copy in use, one that started leaves the earlier unused."""
        folder = self._deployment_dir(name)
        into = folder / "registry"
        into.mkdir(parents=True, exist_ok=True)
        with open(folder / "registry.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DeploymentBusy(f"{name} is being deployed from a registry by another command") from None
            try:
                yield into.resolve()
            finally:
                stored = self.store.deployment(name)
                in_use = Path(stored.topology_path) if stored else None
                for copy in into.resolve().iterdir():
                    if in_use is None or not in_use.is_relative_to(copy):
                        shutil.rmtree(copy, ignore_errors=True)
                if stored is None and not any(into.iterdir()):  # no trace of a deployment that never was
                    with contextlib.suppress(OSError):
                        into.rmdir()
                        (folder / "registry.lock").unlink()
                        folder.rmdir()

    def _registry_entries(self) -> dict[str, str]:
        path = self.home / REGISTRIES
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path} cannot be read ({exc}): mend it or remove it") from None
        registries = document.get("registries") if isinstance(document, dict) else None
        if not isinstance(registries, dict) or not all(isinstance(v, str) for v in registries.values()):
            raise UsageError(f"{path}: expected {{\"registries\": {{NAME: PATH}}}}: mend it or remove it")
        return registries

    @contextlib.contextmanager
    def _registries_locked(self) -> Iterator[dict[str, str]]:
        """The registries to change, written back atomically; one writer at a time across processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f"{REGISTRIES}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._registry_entries()
            yield entries
            path = self.home / REGISTRIES
            temporary = path.with_name(f".{REGISTRIES}.{os.getpid()}")
            temporary.write_text(json.dumps({"registries": entries}, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, path)


def _known(entries: Mapping[str, str]) -> str:
    return f" (known: {', '.join(sorted(entries))})" if entries else " (none is registered: orch registry add)"


def _local_path(source: str) -> Path:
    """A folder or a local git repository, as a path or a file:// URL; never a remote repository."""
    if URL.match(source):
        url = urlsplit(source)
        if url.scheme != "file" or url.netloc not in ("", "localhost"):
            raise UsageError(f"registry '{source}': only a local folder or git repository (a path or a file:// "
                             "URL) can be a registry; clone a remote repository first")
        source = unquote(url.path)
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"registry '{source}': no such folder")
    if not path.is_dir():
        raise UsageError(f"registry '{source}': not a folder")
    return path.resolve()
