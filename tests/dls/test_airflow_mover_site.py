"""The minimal workflow with mover=airflow on the simulated site: `orch deploy --set mover=airflow` in the
ORCH_HOME of a local Airflow that `orch dls up` started (tests/dls/conftest.py); a run stages the dataset in
from the data host and the results out to this machine as DAG runs of orch's DAGs, watched like jobs, with
the same files and checksums the embedded mover gives; a missing source fails the run with the DAG task's
error; undeploy removes what the Airflow stage-in put on the cluster."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"

pytestmark = pytest.mark.e2e


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


def reference(texts: list[str]) -> list[str]:
    counter: Counter[str] = Counter()
    for text in texts:
        counter.update(re.findall(r"[a-z0-9]+", text.lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def manifest_checksum(folder: Path) -> str:
    """The embedded mover's checksum of a dataset, computed here: the sha256 of its manifest (every file's
    sha256 and ./name, in byte order of the names, newline-separated, without the last newline)."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: str(p.relative_to(folder)).encode())
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(folder)}" for p in files]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@pytest.fixture(scope="module")
def deployed(sim_site, dls_airflow):
    home = dls_airflow.home
    copied = subprocess.run(["scp", "-q", "-F", str(sim_site.ssh_config), "-r", str(SAMPLE), "data:/data/"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    result = orch(home, "deploy", str(TOPOLOGY), "-n", "wcair", "-i", str(sim_site.directory / "site.yaml"),
                  "--set", "mover=airflow")
    assert result.returncode == 0, result.stderr
    return home


def _dag_runs(dls_airflow, dag_id: str) -> dict[str, str]:
    """The DAG's runs: id → state."""
    _status, answer = dls_airflow.client().call("GET", f"/dags/{dag_id}/dagRuns?limit=100")
    return {r["dag_run_id"]: r["state"] for r in answer["dag_runs"]}


def test_a_run_moves_its_data_through_airflow_with_the_embedded_movers_results(sim_site, dls_airflow, deployed,
                                                                               tmp_path):
    before = {d: set(_dag_runs(dls_airflow, d)) for d in ("orch_stagein", "orch_stageout")}
    results = tmp_path / "results"
    run = orch(deployed, "run", "wcair", "--set", "dataset=data:/data/sample", "--set", f"result_data_path={results}")
    assert run.returncode == 0, run.stderr + run.stdout
    texts = [p.read_text() for p in sorted(SAMPLE.glob("*.txt"))]
    assert (results / "counts.txt").read_text().splitlines() == reference(texts)
    # the data went through Airflow: one new successful run of each DAG
    for dag_id in ("orch_stagein", "orch_stageout"):
        new = {i: state for i, state in _dag_runs(dls_airflow, dag_id).items() if i not in before[dag_id]}
        assert len(new) == 1 and list(new.values()) == ["success"], (dag_id, new)
        assert next(iter(new)).startswith("orch-stage_")
    # the same files on the cluster, and the same checksum, as the embedded mover gives
    assert sim_site.ssh("login", "ls /data/wordcount-input").stdout.split() == sorted(p.name for p in SAMPLE.glob("*"))
    store = Store(deployed)
    try:
        staged = store.attributes("wcair")["stage_in"]
        out = store.attributes("wcair")["stage_out"]
    finally:
        store.close()
    assert staged["checksum"] == manifest_checksum(SAMPLE)
    assert staged["files"] == len(list(SAMPLE.glob("*")))
    assert out["checksum"] == manifest_checksum(results)
    assert Path(out["target_path"]) == results


def test_a_missing_source_fails_the_run_with_the_dag_tasks_error(sim_site, dls_airflow, deployed, tmp_path):
    run = orch(deployed, "run", "wcair", "--set", "dataset=data:/data/no-such-dataset",
               "--set", f"result_data_path={tmp_path / 'r'}")
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert "/data/no-such-dataset" in said, said
    assert "stage_in" in said
    assert not (tmp_path / "r").exists()


def test_a_catalogued_dataset_moves_through_airflow_checked_against_its_record(sim_site, deployed, tmp_path):
    size = sum(p.stat().st_size for p in SAMPLE.glob("*"))
    for record_id, sha256 in (("sample-air", manifest_checksum(SAMPLE)), ("sample-wrong", "0" * 64)):
        record = tmp_path / f"{record_id}.yaml"
        record.write_text(yaml.safe_dump({
            "id": record_id, "title": "The word count's sample texts", "locations": ["data:/data/sample"],
            "size": size, "sha256": sha256, "licence": "CC-BY-4.0", "keywords": ["wordcount"],
            "created_by": "tests"}))
        added = orch(deployed, "catalogue", "add", str(record))
        assert added.returncode == 0, added.stderr
    results = tmp_path / "by-id"
    by_id = orch(deployed, "run", "wcair", "--set", "dataset=catalogue:sample-air",
                 "--set", f"result_data_path={results}")
    assert by_id.returncode == 0, by_id.stderr + by_id.stdout
    texts = [p.read_text() for p in sorted(SAMPLE.glob("*.txt"))]
    assert (results / "counts.txt").read_text().splitlines() == reference(texts)
    # a record whose sha256 is not the data's: the DAG refuses it, and the run fails saying so
    wrong = orch(deployed, "run", "wcair", "--set", "dataset=catalogue:sample-wrong",
                 "--set", f"result_data_path={tmp_path / 'wrong'}")
    assert wrong.returncode != 0
    assert "is not the catalogued dataset" in wrong.stdout + wrong.stderr
    assert not (tmp_path / "wrong").exists()


def test_undeploy_removes_what_the_airflow_stage_in_put_on_the_cluster(sim_site, deployed):
    assert sim_site.ssh("login", "test -d /data/wordcount-input").returncode == 0
    result = orch(deployed, "undeploy", "wcair")
    assert result.returncode == 0, result.stderr
    assert sim_site.ssh("login", "test -e /data/wordcount-input").returncode == 1
    assert sim_site.ssh("data", "test -d /data/sample").returncode == 0
