"""What load produced for a deployment, kept beside it ($ORCH_HOME/deployments/NAME/topology.cache), so that
undeploy, resume, run, status and outputs of an unchanged deployment skip the loader and tosca-parser (~1 s).

The key: sha256 over every file the loader read (the template and each import, orch's shipped type files
included: the loader reads all of them itself and tosca-parser is handed one merged document, so the list is
exact), the path it was loaded from, the inputs given, orch's version, the cache's format and the loader's
own sources (their sizes and mtimes: a working tree's edits to the loader must not serve a stale model).
Re-hashing those files costs milliseconds; any mismatch, or a cache that cannot be read, means load again.

Pickle: only because the file is orch's own, written by orch into orch's home with mode 0600 and read from
nowhere else; a file that is not the user's own or that others may write is ignored, never unpickled.
Secrets: the Topology holds the input values in clear (`_unsealed` gives them to the loader), so a deployment
with an input whose name is secret (the names the store seals) is never cached: the simple, safe choice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.credentials.sealed import is_secret_name
from orchestrator.model import Topology

FILE_NAME = "topology.cache"
FORMAT = 1
_ORCH = Path(__file__).resolve().parents[1]


def cacheable(inputs: Mapping[str, Any], topology: Topology | None = None) -> bool:
    """No secret-named input among the given ones nor (once loaded) among the topology's own."""
    names = list(inputs) + (list(topology.inputs) + list(topology.input_values) if topology is not None else [])
    return not any(is_secret_name(str(name)) for name in names)


def read(directory: Path, source: str, inputs: Mapping[str, Any]) -> Topology | None:
    """The kept topology when its key still matches, else None (missing, stale, corrupt or not orch's own)."""
    if not cacheable(inputs):
        return None
    import pickle  # here: every command imports this module, few read a topology

    path = directory / FILE_NAME
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o077:
                return None
            kept = pickle.load(handle)  # orch's own file, see above
        if not isinstance(kept, dict) or kept.get("format") != FORMAT:
            return None
        files = kept["files"]
        if kept["key"] != _key(source, inputs, files):
            return None
        topology = pickle.loads(kept["topology"])
    except Exception:  # noqa: BLE001 - a cache that cannot be used is no error: the loader runs instead
        return None
    return topology if isinstance(topology, Topology) else None


def write(directory: Path, source: str, inputs: Mapping[str, Any], topology: Topology,
          files: Iterable[str]) -> None:
    """Keep the topology; a deployment that cannot be cached (secrets, remote imports) loses any older copy."""
    import pickle
    import tempfile

    files = tuple(files)
    path = directory / FILE_NAME
    try:
        if not cacheable(inputs, topology) or any("://" in f for f in files):
            _forget(path)
            return
        key = _key(source, inputs, files)
        directory.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps({"format": FORMAT, "key": key, "files": files,
                             "topology": pickle.dumps(topology, pickle.HIGHEST_PROTOCOL)}, pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".topology.cache.")  # mode 0600
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        # a model that does not pickle, a full disk: the next command loads again, as without a cache
        _forget(path)


def _forget(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _key(source: str, inputs: Mapping[str, Any], files: Iterable[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT, _orch_version(), source, _loader_signature()]).encode())
    digest.update(json.dumps(dict(inputs), sort_keys=True, default=repr).encode())
    for name in files:
        digest.update(b"\0" + name.encode() + b"\0")
        with open(name, "rb") as handle:  # a file gone: OSError, so no match
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _loader_signature() -> list[tuple[str, int, int]]:
    signature = []
    tosca = _ORCH / "tosca"
    for source in (_ORCH / "model.py", *sorted(tosca.glob("*.py")), *sorted(tosca.glob("*.yaml"))):
        info = source.stat()
        signature.append((source.name, info.st_size, info.st_mtime_ns))
    return signature


_VERSION: list[str] = []


def _orch_version() -> str:
    if not _VERSION:
        from importlib.metadata import PackageNotFoundError, version

        try:
            _VERSION.append(version("orch"))
        except PackageNotFoundError:
            _VERSION.append("unknown")
    return _VERSION[0]
