"""Build the corpus cases that are not committed: CSAR archives, a 50 MB template, non-UTF-8 and NUL bytes.

    python tests/corpus/make_csars.py OUTDIR

tests/unit/test_corpus.py calls `build(tmp_path)`; the file names returned are the keys of
tests/corpus/expected.yaml marked `generated: true`.
"""

from __future__ import annotations

import stat
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

HEADER = "tosca_definitions_version: tosca_simple_yaml_1_3\n"
VALID = HEADER + "topology_template:\n  node_templates:\n    server:\n      type: tosca.nodes.Compute\n"
BROKEN = HEADER + "topology_template:\n  node_templates:\n    server:\n      type: tosca.nodes.Mainframe\n"
META = "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\nCreated-By: orch corpus\n"
BIG_BYTES = 50 * 1024 * 1024
BOMB_BYTES = 600 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def _zip(path: Path, members: dict[str, str | bytes], *, symlinks: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)


def zip_slip(path: Path) -> None:
    _zip(path, {"TOSCA-Metadata/TOSCA.meta": META + "Entry-Definitions: main.yaml\n", "main.yaml": VALID,
                "../../evil.sh": "#!/bin/sh\necho owned\n"})


def symlink(path: Path) -> None:
    _zip(path, {"main.yaml": VALID}, symlinks={"playbooks": "/etc"})


def no_entry(path: Path) -> None:
    _zip(path, {"TOSCA-Metadata/TOSCA.meta": META, "definitions/main.yaml": VALID})


def entry_escapes(path: Path) -> None:
    _zip(path, {"TOSCA-Metadata/TOSCA.meta": META + "Entry-Definitions: ../../../etc/hostname\n",
                "main.yaml": VALID})


def broken_template(path: Path) -> None:
    _zip(path, {"TOSCA-Metadata/TOSCA.meta": META + "Entry-Definitions: definitions/main.yaml\n",
                "definitions/main.yaml": BROKEN})


def encrypted_member(path: Path) -> None:
    """A member flagged as encrypted (general-purpose bit 0 set in both of its headers)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("main.yaml", VALID)
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    path.write_bytes(bytes(data))


def huge(path: Path) -> None:
    line = b"# padding so that this template is fifty megabytes long....................................\n"
    with path.open("wb") as f:
        f.write(VALID.encode())
        f.write(line * (BIG_BYTES // len(line) + 1))


def not_utf8(path: Path) -> None:
    """A template saved in Latin-1 by an editor: one é is a lone 0xE9 byte."""
    description = "description: base de données\n".encode("latin-1")
    path.write_bytes(HEADER.encode() + description + VALID[len(HEADER):].encode())


def not_a_zip(path: Path) -> None:
    """A template renamed .csar: text, not an archive."""
    path.write_text(VALID, encoding="utf-8")


def empty_zip(path: Path) -> None:
    _zip(path, {})


def absolute_member(path: Path) -> None:
    _zip(path, {"main.yaml": VALID, "/etc/cron.d/orch-corpus": "* * * * * root /bin/true\n"})


def backslash_slip(path: Path) -> None:
    """A zip slip written with Windows separators, which a Windows unzip would follow."""
    _zip(path, {"main.yaml": VALID, "..\\..\\evil.sh": "#!/bin/sh\necho owned\n"})


def entry_not_in_archive(path: Path) -> None:
    _zip(path, {"TOSCA-Metadata/TOSCA.meta": META + "Entry-Definitions: definitions/main.yaml\n",
                "main.yaml": VALID})


def two_templates(path: Path) -> None:
    """No TOSCA-Metadata and two templates at the root: which one is meant?"""
    _zip(path, {"main.yaml": VALID, "other.yaml": VALID})


def zip_bomb(path: Path) -> None:
    """600 MB of zeros, deflated to under 3 MB."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("main.yaml", VALID)
        chunk = bytes(8 * 1024 * 1024)
        with archive.open("data/zeros.bin", "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)


def missing_playbook(path: Path) -> None:
    _zip(path, {"main.yaml": HEADER + "topology_template:\n  node_templates:\n    server:\n"
                "      type: tosca.nodes.Compute\n      interfaces:\n        Standard:\n"
                "          create: playbooks/create.yaml\n"})


def playbook_outside(path: Path) -> None:
    """The template's playbook climbs out of the unpacked archive to a playbook of this repository,
    which exists: deploying would run a file the CSAR does not carry."""
    outside = "../" * 40 + str(REPO / "playbooks" / "hello" / "remove.yaml").lstrip("/")
    _zip(path, {"main.yaml": HEADER + "topology_template:\n  node_templates:\n    server:\n"
                "      type: tosca.nodes.Compute\n      interfaces:\n        Standard:\n"
                f"          create:\n            implementation: {outside}\n"
                "            inputs: { path: /tmp/orch-corpus-never }\n"})


def import_outside(path: Path) -> None:
    """The template imports a type file by absolute path, from outside the archive."""
    outside = REPO / "tosca_types" / "hello-types.yaml"
    _zip(path, {"main.yaml": HEADER + f"imports:\n  - {outside}\n" + VALID[len(HEADER):]})


def nul_byte(path: Path) -> None:
    """A template with a NUL byte in it (a binary file, or one damaged on copy)."""
    path.write_bytes(HEADER.encode() + b"description: half\x00written\n" + VALID[len(HEADER):].encode())


def inputs_not_utf8(path: Path) -> None:
    """An inputs file saved in Latin-1: one \u00e9 is a lone 0xE9 byte."""
    path.write_bytes("greeting: Bonjour, \u00e7a va ?\n".encode("latin-1"))


CASES: dict[str, Callable[[Path], None]] = {
    "zip_slip.csar": zip_slip,
    "symlink.csar": symlink,
    "no_entry.csar": no_entry,
    "entry_escapes.csar": entry_escapes,
    "broken_template.csar": broken_template,
    "bug_encrypted_member.csar": encrypted_member,
    "huge_50mb.yaml": huge,
    "not_utf8.yaml": not_utf8,
    "not_a_zip.csar": not_a_zip,
    "empty_zip.csar": empty_zip,
    "absolute_member.csar": absolute_member,
    "backslash_slip.csar": backslash_slip,
    "entry_not_in_archive.csar": entry_not_in_archive,
    "two_templates.csar": two_templates,
    "zip_bomb.csar": zip_bomb,
    "missing_playbook.csar": missing_playbook,
    "playbook_outside.csar": playbook_outside,
    "import_outside.csar": import_outside,
    "nul_byte.yaml": nul_byte,
    "inputs_not_utf8.yaml": inputs_not_utf8,
}


def build(directory: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write the generated cases (all, or those named) into directory; return name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    built: dict[str, Path] = {}
    for name, make in CASES.items():
        if names is not None and name not in names:
            continue
        make(directory / name)
        built[name] = directory / name
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in build(Path(sys.argv[1])).values():
        print(f"{path} ({path.stat().st_size} bytes)")
