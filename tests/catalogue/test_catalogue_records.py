"""Records and the catalogue file: every problem named with its file and field, a round trip through YAML
and JSON, concurrent writers (threads and processes) that lose nothing, the dataset checksum equal to the
embedded mover's manifest for awkward names, and the resolution of catalogue:ID and registration rules."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from orchestrator.catalogue import (
    DuplicateRecord,
    InvalidRecord,
    Record,
    UnknownRecord,
    YamlCatalogue,
    catalogue_path,
    dataset_digest,
    read_record_file,
    record_from_mapping,
    register_result,
    resolve_source,
)

SHA = "ab" * 32


def fields(**changes) -> dict:
    base = {"id": "sample-1", "title": "A sample", "locations": ["/data/sample", "data:/data/sample"],
            "size": 10, "sha256": SHA, "licence": "CC-BY-4.0", "keywords": ["text"], "created_by": "alice",
            "created": "2024-05-01T12:00:00Z"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def problems(data, where="dataset.yaml") -> list[str]:
    with pytest.raises(InvalidRecord) as caught:
        record_from_mapping(data, where)
    assert str(caught.value).startswith(f"{where}: ")
    return caught.value.problems


@pytest.mark.parametrize("changes, expected", [
    ({"id": "has space"}, "id: 'has space' is not an id"),
    ({"id": "catalogue:x"}, "id: 'catalogue:x' is not an id"),
    ({"title": ""}, "title: must be non-empty text"),
    ({"title": "two\nlines"}, "title: must be one line"),
    ({"title": "   "}, "title: must be non-empty text"),
    ({"locations": []}, "locations: must be a list of at least one place"),
    ({"locations": "/data/x"}, "locations: must be a list"),
    ({"locations": ["relative/x"]}, "locations: [0] 'relative/x' is not a URL"),
    ({"locations": ["/a", "https:relative"]}, "locations: [1] 'https:relative' is not a URL"),
    ({"locations": ["/a\n/b"]}, "locations: [0] '/a\\n/b' holds control characters"),
    ({"locations": ["/a", "/a"]}, "locations: lists a place twice"),
    ({"size": -1}, "size: -1 is not a size in bytes"),
    ({"size": True}, "size: True is not a size in bytes"),
    ({"size": "10"}, "size: '10' is not a size in bytes"),
    ({"sha256": "ABC"}, "sha256: 'ABC' is not a sha256"),
    ({"sha256": SHA.upper()}, "is not a sha256 (64 lowercase"),
    ({"keywords": "text"}, "keywords: must be a list of words"),
    ({"keywords": ["ok", ""]}, "keywords: [1]: each keyword"),
    ({"created": "yesterday"}, "created: 'yesterday' is not an ISO 8601 time"),
    ({"created": "2024-05-01T12:00:00+02:00"}, "must be in UTC"),
    ({"created": "2024-05-01T12:00:00"}, "must be in UTC"),
    ({"licence": ...}, "licence: missing (required)"),
    ({"created_by": ...}, "created_by: missing (required)"),
    ({"license": "MIT"}, "unknown field license (the field is spelled 'licence')"),
])
def test_each_bad_field_is_named(changes, expected):
    found = problems(fields(**changes))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems({"id": "x y", "size": -3})
    assert [p.split(":")[0] for p in found] == ["title", "locations", "sha256", "licence", "keywords",
                                                "created_by", "id", "size"]
    assert problems(["not", "a", "mapping"]) == [
        "a record is a mapping of fields (id, title, locations, size, sha256, licence, keywords, created_by), "
        "not list"]


def test_created_defaults_to_now_in_utc_and_is_normalised():
    record = record_from_mapping(fields(created=...), "x", now="2030-01-02T03:04:05Z")
    assert record.created == "2030-01-02T03:04:05Z" and record.description == ""
    assert record_from_mapping(fields(created="2024-05-01T12:00:00.123+00:00"), "x").created == "2024-05-01T12:00:00Z"
    fresh = record_from_mapping(fields(created=...), "x")
    assert fresh.created.endswith("Z") and fresh.created[:2] == "20"


def test_a_record_file_names_its_problems(tmp_path):
    bad = tmp_path / "dataset.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(InvalidRecord, match=r"dataset.yaml: not YAML at line \d+"):
        read_record_file(bad)
    with pytest.raises(InvalidRecord, match=r"missing\.yaml: cannot read it"):
        read_record_file(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(fields()))
    assert record_from_mapping(read_record_file(good), str(good)) == record_from_mapping(fields(), "x")


@pytest.mark.parametrize("name", ["catalogue.yaml", "catalogue.json"])
def test_round_trip(tmp_path, name):
    catalogue = YamlCatalogue(tmp_path / "home" / name)
    assert catalogue.records() == []
    one = record_from_mapping(fields(description="Two\nlines, ü"), "x")
    two = record_from_mapping(fields(id="sample-2", keywords=[], locations=["https://example.org/a.tar.gz"]), "x")
    assert catalogue.add(one) == one and catalogue.add(two) == two
    assert YamlCatalogue(tmp_path / "home" / name).records() == [one, two]
    text = (tmp_path / "home" / name).read_text()
    if name.endswith(".json"):
        assert [r["id"] for r in json.loads(text)["records"]] == ["sample-1", "sample-2"]
    else:
        assert yaml.safe_load(text)["records"][0] == one.as_dict()
    with pytest.raises(DuplicateRecord, match="a record 'sample-1' is already in the catalogue"):
        catalogue.add(one)
    assert catalogue.remove("sample-1") == one
    assert catalogue.records() == [two]
    with pytest.raises(UnknownRecord, match=f"no record 'sample-1' in the catalogue {tmp_path}"):
        catalogue.record("sample-1")
    with pytest.raises(UnknownRecord):
        catalogue.remove("sample-1")
    # nothing but the catalogue and its lock is left beside it (no temporary files)
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [name, f"{name}.lock"]


def test_a_damaged_catalogue_is_named(tmp_path):
    path = tmp_path / "catalogue.yaml"
    path.write_text("records: [ {id: x} ]\n")
    with pytest.raises(InvalidRecord, match=r"catalogue.yaml: records\[0\]: title: missing"):
        YamlCatalogue(path).records()
    path.write_text("- a list\n")
    with pytest.raises(Exception, match="a catalogue is a mapping with a list 'records'"):
        YamlCatalogue(path).records()


def test_the_file_is_the_environment_s_or_the_home_s(tmp_path, monkeypatch):
    assert catalogue_path(tmp_path) == tmp_path / "catalogue.yaml"
    monkeypatch.setenv("ORCH_CATALOGUE", str(tmp_path / "shared.json"))
    assert catalogue_path(tmp_path / "other") == tmp_path / "shared.json"


def _add_many(path: str, prefix: str, count: int) -> None:
    catalogue = YamlCatalogue(Path(path))
    for i in range(count):
        catalogue.add(record_from_mapping(fields(id=f"{prefix}-{i}"), "x"))


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "catalogue.yaml"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_add_many, args=(str(path), f"p{n}", 15)) for n in range(3)]
    threads = [threading.Thread(target=_add_many, args=(str(path), f"t{n}", 15)) for n in range(3)]
    for worker in (*processes, *threads):
        worker.start()
    for worker in (*processes, *threads):
        worker.join()
    assert all(p.exitcode == 0 for p in processes)
    ids = [r.id for r in YamlCatalogue(path).records()]
    assert sorted(ids) == sorted(f"{w}{n}-{i}" for w in "pt" for n in range(3) for i in range(15))


def _mover_checksum(folder: Path) -> str:
    """The embedded mover's manifest (movers/ansible/move.yaml), its last newline dropped as Ansible does."""
    listed = subprocess.run("find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --",
                            shell=True, cwd=folder, capture_output=True, check=True).stdout
    return subprocess.run(["sha256sum"], input=listed.rstrip(b"\n"), capture_output=True,
                          check=True).stdout.split()[0].decode()


def test_the_checksum_is_the_mover_s_manifest(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    names = ["a.txt", "B.txt", "sub/z", "with space", "back\\slash", "new\nline", "car\rriage", ".hidden", "é"]
    for i, name in enumerate(names):
        (data / name).write_text(f"content {i}\n")
    (data / "link").symlink_to(data / "a.txt")  # not a file for find -type f
    size, checksum = dataset_digest(data)
    assert checksum == _mover_checksum(data)
    assert size == sum((data / n).stat().st_size for n in names)
    # a single file is moved into a folder of its own: its checksum is that folder's
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "file.bin").write_bytes(b"\x00\x01" * 1000)
    assert dataset_digest(alone / "file.bin") == (2000, _mover_checksum(alone))


def test_a_catalogue_source_resolves_to_the_first_reachable_location(tmp_path):
    catalogue = YamlCatalogue(tmp_path / "catalogue.yaml")
    catalogue.add(record_from_mapping(fields(locations=["elsewhere:/data/x", "data:/data/x", "/here"]), "x"))

    def place_problem(place: str) -> str:
        return "not a host of this topology" if place.startswith("elsewhere:") else ""

    assert resolve_source("catalogue:sample-1", "stage_in", catalogue, place_problem) == {
        "source": "data:/data/x", "id": "sample-1", "sha256": SHA, "problem": ""}
    assert resolve_source("/plain/path", "stage_in", catalogue, place_problem) == {
        "source": "/plain/path", "id": "", "sha256": "", "problem": ""}
    unknown = resolve_source("catalogue:nope", "stage_in", catalogue, place_problem)
    assert unknown["problem"].startswith("stage_in: source catalogue:nope: no record 'nope' in the catalogue")
    assert unknown["source"] == ""
    catalogue.add(record_from_mapping(fields(id="far", locations=["elsewhere:/x"]), "x"))
    far = resolve_source("catalogue:far", "stage_in", catalogue, place_problem)
    assert far["problem"] == ("stage_in: source catalogue:far: no location of the record can be read here "
                              "(elsewhere:/x: not a host of this topology)")


def test_registering_the_same_result_again_keeps_one_record(tmp_path):
    catalogue = YamlCatalogue(tmp_path / "catalogue.yaml")
    checksum = "cd" * 32
    first = register_result(catalogue, deployment="wc", node="stage_out", target="/r/one", size=5,
                            checksum=checksum, source="environment:/scratch/out")
    assert first.id == f"wc-stage_out-{checksum[:12]}" and first.created_by == "wc"
    assert first.locations == ("/r/one",) and first.sha256 == checksum and first.size == 5
    assert "environment:/scratch/out" in first.description
    again = register_result(catalogue, deployment="wc", node="stage_out", target="/r/one", size=5, checksum=checksum)
    elsewhere = register_result(catalogue, deployment="wc", node="stage_out", target="/r/two", size=5,
                                checksum=checksum, title="Counts")
    assert again == first and elsewhere.locations == ("/r/one", "/r/two")
    assert [r.id for r in catalogue.records()] == [first.id]
    assert isinstance(catalogue.records()[0], Record)


def test_the_register_command_reads_its_values_from_stdin(tmp_path):
    request = {"catalogue": str(tmp_path / "c.yaml"), "deployment": "d", "node": "n", "target": "/r/$(x)",
               "size": 3, "checksum": "ef" * 32, "source": "s", "title": "T"}
    done = subprocess.run([sys.executable, "-m", "orchestrator.catalogue", "register"], input=json.dumps(request),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["id"] == "d-n-" + "ef" * 6 and reply["record"]["locations"] == ["/r/$(x)"]
    bad = subprocess.run([sys.executable, "-m", "orchestrator.catalogue", "register"], input="{}",
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "lacks catalogue, deployment, node, target, size, checksum" in bad.stderr
