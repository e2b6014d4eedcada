"""CSAR archives: unpacked safely into a temporary folder that is always removed."""

from __future__ import annotations

import contextlib
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterator

from orchestrator.model import Problem

MAX_UNPACKED_BYTES = 500 * 1024 * 1024


def is_csar(path: str | Path) -> bool:
    return str(path).lower().endswith((".zip", ".csar"))


@contextlib.contextmanager
def unpacked(path: str | Path) -> Iterator[tuple[Path | None, list[Problem]]]:
    """Yield (entry template path, problems); the folder is removed when the block ends."""
    name = str(path)
    tmp = Path(tempfile.mkdtemp(prefix="orch-csar-"))
    try:
        yield _unpack(Path(path), name, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_into(path: Path, directory: Path) -> tuple[Path | None, list[Problem]]:
    """Unpack for keeps (a deployment's own copy of its CSAR): into a fresh folder beside it, which
    replaces the old copy only once the archive was accepted."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".csar-", dir=directory.parent))
    entry, problems = _unpack(path, str(path), fresh)
    if problems or entry is None:
        shutil.rmtree(fresh, ignore_errors=True)
        if not any(directory.parent.iterdir()):
            directory.parent.rmdir()
        return None, problems
    if directory.exists():
        shutil.rmtree(directory)
    fresh.rename(directory)
    return directory / entry.relative_to(fresh), []


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
    return candidates[0], []
