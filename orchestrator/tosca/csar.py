"""CSAR archives: unpacked safely into a temporary folder that is always removed."""

from __future__ import annotations

import contextlib
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from orchestrator.model import Problem
from orchestrator.tosca.yamlio import read_yaml

MAX_UNPACKED_BYTES = 500 * 1024 * 1024


def is_csar(path: str | Path) -> bool:
    return str(path).lower().endswith((".zip", ".csar"))


@contextlib.contextmanager
def unpacked(path: str | Path) -> Iterator[tuple[Path, Path | None, list[Problem]]]:
    """Yield (the folder, entry template path, problems); the folder is removed when the block ends."""
    name = str(path)
    tmp = Path(tempfile.mkdtemp(prefix="orch-csar-"))
    try:
        yield (tmp, *_unpack(Path(path), name, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_beside(path: Path, directory: Path) -> tuple[Path | None, Path | None, list[Problem]]:
    """Unpack for keeps (a deployment's own copy of its CSAR), first into a fresh folder beside `directory`:
    (fresh folder, entry template in it, problems). The caller validates the template there and then
    either `swap_in`s the folder or `discard`s it, so that a refused archive changes nothing."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".csar-", dir=directory.parent))
    entry, problems = _unpack(path, str(path), fresh)
    if problems or entry is None:
        discard(fresh, directory)
        return None, None, problems
    return fresh, entry, []


def discard(fresh: Path, directory: Path) -> None:
    """Remove a fresh unpacked folder, and the deployment's folder too if that leaves it empty."""
    shutil.rmtree(fresh, ignore_errors=True)
    with contextlib.suppress(OSError):
        if not any(directory.parent.iterdir()):
            directory.parent.rmdir()


def swap_in(fresh: Path, directory: Path) -> None:
    """The accepted folder replaces the deployment's previous copy."""
    if directory.exists():
        old = Path(tempfile.mkdtemp(prefix=".csar-old-", dir=directory.parent))
        directory.rename(old / "csar")
        fresh.rename(directory)
        shutil.rmtree(old, ignore_errors=True)
    else:
        fresh.rename(directory)


def _unpack(path: Path, name: str, into: Path) -> tuple[Path | None, list[Problem]]:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        return None, [Problem(name, "", "no such file")]
    except (zipfile.BadZipFile, OSError) as exc:
        return None, [Problem(name, "", f"not a readable CSAR (zip) archive: {exc}")]
    with archive:
        problems = [p for info in archive.infolist() if (p := _member_problem(name, info))]
        total = sum(info.file_size for info in archive.infolist())
        if total > MAX_UNPACKED_BYTES:
            problems.append(Problem(name, "", f"unpacks to {total // 2**20} MB; the limit is "
                                    f"{MAX_UNPACKED_BYTES // 2**20} MB"))
        if problems:
            return None, problems
        try:
            archive.extractall(into)
        except Exception as exc:  # noqa: BLE001 - encrypted members, unknown compression, bad CRCs...
            return None, [Problem(name, "", f"damaged CSAR archive: {exc}")]
    return _entry_template(name, into)


def _member_problem(name: str, info: zipfile.ZipInfo) -> Problem | None:
    member = PurePosixPath(info.filename)
    if member.is_absolute() or ".." in member.parts or "\\" in info.filename:
        return Problem(name, info.filename, "path leaves the archive (zip slip); refused")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Problem(name, info.filename, "symbolic links are not allowed in a CSAR")
    return None


def _entry_template(name: str, root: Path) -> tuple[Path | None, list[Problem]]:
    meta = root / "TOSCA-Metadata" / "TOSCA.meta"
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Entry-Definitions":
                entry = (root / value.strip()).resolve()
                if not entry.is_relative_to(root.resolve()):
                    return None, [Problem(name, "TOSCA-Metadata/TOSCA.meta", "Entry-Definitions leaves the archive")]
                if not entry.is_file():
                    return None, [Problem(name, "TOSCA-Metadata/TOSCA.meta",
                                          f"Entry-Definitions '{value.strip()}' is not in the archive")]
                return entry, []
        return None, [Problem(name, "TOSCA-Metadata/TOSCA.meta", "has no Entry-Definitions")]
    candidates = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(candidates) != 1:
        return None, [Problem(name, "", "a CSAR without TOSCA-Metadata needs exactly one .yaml at its root; "
                              f"found {len(candidates)}")]
    document, _problems = read_yaml(candidates[0], "template")
    if isinstance(document, dict) and document.get("tosca_definitions_version") == "tosca_simple_yaml_1_0":
        # TOSCA 1.0's CSAR always has the metadata file; the single root template without it came with 1.1
        return None, [Problem(name, "TOSCA-Metadata/TOSCA.meta", f"is missing, which a TOSCA 1.0 CSAR needs (its "
                              f"template {candidates[0].name} declares tosca_simple_yaml_1_0; a CSAR without "
                              "TOSCA-Metadata is TOSCA 1.1 or later)")]
    return candidates[0], []
