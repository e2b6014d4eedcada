"""`orch catalogue add | list | show | remove` through the real command (its own process): what it prints,
what the catalogue file holds after, and a bad record file refused with exit code 2 naming the file and
the fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHA = "0f" * 32


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), "catalogue", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def record_file(folder: Path, name: str = "dataset.yaml", **changes) -> Path:
    fields = {"id": "wordcount-sample", "title": "Word count sample", "locations": ["data:/data/sample"],
              "size": 2767, "sha256": SHA, "licence": "CC-BY-4.0", "keywords": ["text", "sample"],
              "created_by": "alice", "description": "Three short texts."}
    fields.update(changes)
    path = folder / name
    path.write_text(yaml.safe_dump(fields))
    return path


def test_add_list_show_remove(tmp_path):
    home = tmp_path / "home"
    assert orch(home, "list").stdout.strip() == "no records (orch catalogue add DATASET.yaml)"
    added = orch(home, "add", str(record_file(tmp_path)))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added wordcount-sample (catalogue:wordcount-sample)"
    other = orch(home, "add", str(record_file(tmp_path, "other.json", id="other", locations=["/x"])))
    assert other.returncode == 0, other.stderr

    listed = orch(home, "list")
    assert listed.returncode == 0 and "wordcount-sample" in listed.stdout and "2.8 kB" in listed.stdout
    as_json = json.loads(orch(home, "list", "--json").stdout)
    assert [r["id"] for r in as_json] == ["wordcount-sample", "other"]
    assert as_json[0]["created"].endswith("Z")

    shown = yaml.safe_load(orch(home, "show", "wordcount-sample").stdout)
    assert shown == {**as_json[0], "description": "Three short texts."}
    assert json.loads(orch(home, "show", "other", "--json").stdout)["locations"] == ["/x"]
    stored = yaml.safe_load((home / "catalogue.yaml").read_text())["records"]
    assert stored == as_json

    removed = orch(home, "remove", "other")
    assert removed.returncode == 0 and removed.stdout.startswith("removed other; its data was not touched (/x)")
    assert [r["id"] for r in json.loads(orch(home, "list", "--json").stdout)] == ["wordcount-sample"]


def test_refusals_exit_2_naming_the_file_and_field(tmp_path):
    home = tmp_path / "home"
    bad = record_file(tmp_path, size="big", sha256="nope", locations=["relative"])
    refused = orch(home, "add", str(bad))
    assert refused.returncode == 2 and refused.stdout == ""
    message = refused.stderr.strip()
    assert message.startswith(f"error: {bad}: ") and "Traceback" not in refused.stderr
    for part in ("size: 'big' is not a size in bytes", "sha256: 'nope' is not a sha256",
                 "locations: [0] 'relative' is not a URL"):
        assert part in message
    assert not (home / "catalogue.yaml").exists()

    unreadable = orch(home, "add", str(tmp_path / "missing.yaml"))
    assert unreadable.returncode == 2 and f"{tmp_path / 'missing.yaml'}: cannot read it" in unreadable.stderr
    assert orch(home, "add", str(record_file(tmp_path))).returncode == 0
    twice = orch(home, "add", str(record_file(tmp_path)))
    assert twice.returncode == 2 and "a record 'wordcount-sample' is already in the catalogue" in twice.stderr
    for command in ("show", "remove"):
        unknown = orch(home, command, "nope")
        assert unknown.returncode == 2
        assert unknown.stderr.strip() == f"error: no record 'nope' in the catalogue {home / 'catalogue.yaml'}"
