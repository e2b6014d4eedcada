"""Data pipelines with the catalogue, through the CLI on this machine (tests/catalogue/data/pipeline.yaml: a
stage-in then a stage-out, deploy runs nothing): a run whose dataset is catalogue:ID stages the record's data
in exactly as a run with the plain path; a stage-out with register=true adds a record whose sha256 is the
node's checksum attribute; a record's location full of shell and template text stays data; data that is not
the record's, an id the catalogue has not, and a record no host of the topology can reach are refused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.catalogue import YamlCatalogue, dataset_digest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "tests" / "catalogue" / "data" / "pipeline.yaml"
FILTERS = ROOT / "playbooks" / "eflows" / "filter_plugins" / "eflows.py"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def attributes(home: Path, name: str, node: str) -> dict:
    return json.loads(orch(home, "status", name, "--json").stdout)["nodes"][node]["attributes"]


def add_record(home: Path, folder: Path, record_id: str, **changes) -> dict:
    size, checksum = dataset_digest(folder)
    fields = {"id": record_id, "title": f"{record_id} texts", "locations": [f"data:{folder}"], "size": size,
              "sha256": checksum, "licence": "CC-BY-4.0", "keywords": ["test"], "created_by": "tests", **changes}
    path = folder.parent / f"{record_id}.yaml"
    path.write_text(yaml.safe_dump(fields))
    added = orch(home, "catalogue", "add", str(path))
    assert added.returncode == 0, added.stderr
    return fields


def dataset(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("alpha beta\n")
    (folder / "sub" / "two.txt").write_text("gamma\n")
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("catalogue") / "home"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "pipe", "--set", "register=true",
                    "--set", "register_title=Pipeline results")
    assert deployed.returncode == 0, deployed.stderr
    return home


def run(home: Path, source: str, staged: Path, results: Path) -> subprocess.CompletedProcess:
    return orch(home, "run", "pipe", "--set", f"dataset={source}", "--set", f"staged={staged}",
                "--set", f"results={results}")


def test_a_catalogue_id_stages_in_what_the_plain_path_does_and_the_result_is_registered(home, tmp_path):
    data = dataset(tmp_path / "data" / "texts")
    record = add_record(home, data, "texts")

    plain = run(home, f"data:{data}", tmp_path / "staged-plain", tmp_path / "results-plain")
    assert plain.returncode == 0, plain.stderr
    by_path = attributes(home, "pipe", "stage_in")
    by_id = run(home, "catalogue:texts", tmp_path / "staged-id", tmp_path / "results-id")
    assert by_id.returncode == 0, by_id.stderr
    by_record = attributes(home, "pipe", "stage_in")

    assert tree(tmp_path / "staged-id") == tree(tmp_path / "staged-plain") == tree(data)
    assert tree(tmp_path / "results-id") == tree(tmp_path / "results-plain") == tree(data)
    assert by_record["checksum"] == by_path["checksum"] == record["sha256"]
    assert by_record["files"] == by_path["files"] == 2

    out = attributes(home, "pipe", "stage_out")
    registered = YamlCatalogue(home / "catalogue.yaml").record(out["catalogue_id"])
    assert registered.id == f"pipe-stage_out-{out['checksum'][:12]}"
    assert registered.sha256 == out["checksum"] == record["sha256"]
    assert registered.size == record["size"] == dataset_digest(tmp_path / "results-id")[0]
    # the same data staged out twice is one record, at both places; made by the deployment, named as asked
    assert registered.locations == (str(tmp_path / "results-plain"), str(tmp_path / "results-id"))
    assert registered.created_by == "pipe" and registered.title == "Pipeline results"
    assert [r.id for r in YamlCatalogue(home / "catalogue.yaml").records()] == ["texts", registered.id]
    # and the registered result is a dataset a later stage-in can name
    again = run(home, f"catalogue:{registered.id}", tmp_path / "staged-again", tmp_path / "results-again")
    assert again.returncode == 0, again.stderr
    assert tree(tmp_path / "staged-again") == tree(data)


def test_a_record_s_values_stay_data(home, tmp_path):
    marker = tmp_path / "MARK"
    hostile = tmp_path / "data" / f"$(touch {marker}) `touch {marker}`; touch {marker} '\" {{{{ 7*7 }}}}"
    dataset(hostile)
    add_record(home, hostile, "hostile", title=f"$(touch {marker}) {{{{ lookup('pipe', 'touch {marker}') }}}}")
    moved = run(home, "catalogue:hostile", tmp_path / "staged", tmp_path / "results")
    assert moved.returncode == 0, moved.stderr
    assert tree(tmp_path / "staged") == tree(hostile)
    assert not marker.exists() and not (ROOT / "playbooks" / "eflows" / marker.name).exists()


def test_data_that_is_not_the_record_s_is_refused(home, tmp_path):
    data = dataset(tmp_path / "data" / "changed")
    add_record(home, data, "changed")
    (data / "one.txt").write_text("edited since it was catalogued\n")
    moved = run(home, "catalogue:changed", tmp_path / "staged", tmp_path / "results")
    assert moved.returncode == 1
    assert f"stage_in: source catalogue:changed: the data at data:{data} is not the catalogued dataset" in moved.stderr


def test_an_unknown_id_is_refused_before_anything_runs(home, tmp_path):
    before = json.loads(orch(home, "executions", "pipe", "--json").stdout)
    refused = run(home, "catalogue:nope", tmp_path / "staged", tmp_path / "results")
    assert refused.returncode == 2
    assert f"input 'dataset': catalogue:nope: no record 'nope' in the catalogue {home / 'catalogue.yaml'}" \
        in refused.stderr
    assert json.loads(orch(home, "executions", "pipe", "--json").stdout) == before


def test_a_record_no_host_of_the_topology_holds_fails_the_step(home, tmp_path):
    data = dataset(tmp_path / "data" / "far")
    add_record(home, data, "far", locations=[f"elsewhere:{data}"])
    moved = run(home, "catalogue:far", tmp_path / "staged", tmp_path / "results")
    assert moved.returncode == 1
    assert "stage_in: source catalogue:far: no location of the record can be read here" in moved.stderr
    assert "elsewhere is not a host of this topology" in moved.stderr
    assert not (tmp_path / "staged").exists()


def test_the_playbook_s_resolution_names_the_node_and_the_id(tmp_path):
    """What the step says when the record is gone between the command's check and the move."""
    spec = importlib.util.spec_from_file_location("eflows_filters", FILTERS)
    filters = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    deployment_dir = tmp_path / "home" / "deployments" / "wc"
    catalogue = filters.catalogue_file(str(deployment_dir))
    assert catalogue == str(tmp_path / "home" / "catalogue.yaml")
    found = filters.catalogue_source("catalogue:gone", catalogue, {"data": {}}, "stage_in")
    assert found["problem"] == f"stage_in: source catalogue:gone: no record 'gone' in the catalogue {catalogue} " \
                               "(orch catalogue list)"
    assert filters.catalogue_source("data:/x", catalogue, {"data": {}}, "stage_in")["source"] == "data:/x"
