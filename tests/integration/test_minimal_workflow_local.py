"""The eFlows4HPC minimal workflow on the embedded site (this machine, local connection, jobs as
background processes): deploy, run, results checked against a reference computed here, a second run
with other inputs, a second deploy that changes nothing, undeploy; and the image-creation service
backend against a test double."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.store.sqlite import Store

from .image_service_double import ImageServiceDouble

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)


def reference_counts(folder: Path) -> list[str]:
    """Independent of the app and its kernels: the documented rule, with collections.Counter."""
    counter: Counter[str] = Counter()
    for path in sorted(folder.glob("*.txt")):
        counter.update(re.findall(r"[a-z0-9]+", path.read_text(encoding="utf-8", errors="replace").lower()))
    return [f"{word} {count}" for word, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def site_overrides(root: Path) -> list[str]:
    args = []
    for key in ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir"):
        args += ["--set", f"{key}={root / key}"]
    return args


def changed_tasks(home: Path, name: str, execution_id: str) -> list[str]:
    store = Store(home)
    try:
        return [e.message for e in store.events(name, execution_id) if e.kind == "task" and "changed" in e.message]
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded")
    home = root / "home"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(SITE), *site_overrides(root))
    assert deployed.returncode == 0, deployed.stderr
    return home, root


def test_deploy_installs_runtime_and_image(site):
    home, root = site
    outputs = json.loads(orch(home, "outputs", "wordcount", "--json").stdout)
    assert outputs["runtime_versions"]["wordcount-kernels"] == "1.0.0"
    image = Path(outputs["image_path"])
    assert image.parent == root / "image_dir"
    manifest = json.loads((image / "manifest.json").read_text())
    assert manifest["machine"]["platform"] == "linux/amd64" and manifest["workflow"] == "wordcount"
    assert (image / "site-packages" / "wordcount_kernels").is_dir() and (image / "app" / "wordcount.py").is_file()
    # every file of the image is listed with its checksum, and matches
    listed = subprocess.run(["sha256sum", "-c", "files.sha256", "--quiet"], cwd=image, capture_output=True)
    assert listed.returncode == 0, listed.stdout


def test_run_gives_correct_results_and_runs_again_with_other_inputs(site, tmp_path):
    home, root = site
    first = orch(home, "run", "wordcount")
    assert first.returncode == 0, first.stderr
    result_file = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["result_file"])
    assert result_file == root / "results_dir" / "counts.txt"
    assert result_file.read_text().splitlines() == reference_counts(SAMPLE)

    dataset = tmp_path / "other"
    dataset.mkdir()
    (dataset / "one.txt").write_text("Gamma beta alpha gamma\nGAMMA, beta!\n")
    (dataset / "two.txt").write_text("delta 42 delta\n")
    results = tmp_path / "results"
    second = orch(home, "run", "wordcount", "--set", f"dataset={dataset}", "--set", f"result_data_path={results}",
                  "--set", f"staged_in_data_path={root / 'data_dir' / 'second'}")
    assert second.returncode == 0, second.stderr
    assert (results / "counts.txt").read_text().splitlines() == reference_counts(dataset) == [
        "gamma 3", "beta 2", "delta 2", "42 1", "alpha 1"]
    assert json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["result_file"] == f"{results}/counts.txt"
    executions = json.loads(orch(home, "executions", "wordcount", "--json").stdout)
    assert [e["workflow"] for e in executions] == ["install", "exec_job", "exec_job"]


def test_second_deploy_changes_nothing(site):
    home, _ = site
    again = orch(home, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(SITE),
                 *site_overrides(site[1]))
    assert again.returncode == 0, again.stderr
    execution_id = json.loads(orch(home, "executions", "wordcount", "--json").stdout)[-1]["id"]
    assert changed_tasks(home, "wordcount", execution_id) == []
    assert json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["image_rebuilt"] is False


def test_undeploy_after_a_failed_image_build_keeps_the_build_folder(tmp_path):
    """A failed create leaves no image_name: the image tree's path is build_dir + '/', which must
    never be removed (it holds every deployment's images)."""
    root = tmp_path / "site"
    (root / "build_dir").mkdir(parents=True)
    (root / "build_dir" / "someone-elses-image.tar.gz").write_text("keep me")
    home = tmp_path / "home"
    with ImageServiceDouble(fail_with="no space left on the builder") as service:
        failed = orch(home, "deploy", str(TOPOLOGY), "-n", "wc", "-i", str(SITE), *site_overrides(root),
                      "--set", "image_backend=service", "--set", f"image_service_url={service.url}")
    assert failed.returncode == 1, failed.stderr
    undeployed = orch(home, "undeploy", "wc")
    assert undeployed.returncode == 0, undeployed.stderr
    assert (root / "build_dir" / "someone-elses-image.tar.gz").read_text() == "keep me"


def test_undeploy_removes_what_the_deployment_put_on_the_hosts(site):
    home, root = site
    image = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["image_path"])
    result = orch(home, "undeploy", "wordcount")
    assert result.returncode == 0, result.stderr
    assert not image.exists() and not Path(f"{image}.tar.gz").exists()
    assert not (root / "work_dir" / "venv-wordcount").exists()
    assert not list((root / "build_dir").glob("wordcount-*.tar.gz"))
    # the image tree and every staged-in copy (two runs, two staged folders) are gone; the builder's
    # shared sources and environment stay, and so do the results
    assert sorted(p.name for p in (root / "build_dir").iterdir()) == [".builder", "src"]
    assert not (root / "data_dir" / "wordcount-input").exists() and not (root / "data_dir" / "second").exists()
    assert (root / "results_dir" / "counts.txt").read_text().splitlines() == reference_counts(SAMPLE)
    assert not (home / "deployments" / "wordcount").exists()


def test_image_from_the_image_creation_service(tmp_path):
    home = tmp_path / "home"
    with ImageServiceDouble() as service:
        args = ["-n", "svc", "-i", str(SITE), *site_overrides(tmp_path), "--set", "image_backend=service",
                "--set", f"image_service_url={service.url}"]
        deployed = orch(home, "deploy", str(TOPOLOGY), *args)
        assert deployed.returncode == 0, deployed.stderr
        image = Path(json.loads(orch(home, "outputs", "svc", "--json").stdout)["image_path"])
        manifest = json.loads((image / "manifest.json").read_text())
        assert manifest["built_by"] == "image-service test double"
        assert service.requests[0]["machine"]["platform"] == "linux/amd64"
        assert service.requests[0]["workflow"] == "wordcount" and service.requests[0]["step_id"] == "image"
        # the same description and inputs: the service is not asked again
        again = orch(home, "deploy", str(TOPOLOGY), *args)
        assert again.returncode == 0, again.stderr
        assert len(service.requests) == 1
        run = orch(home, "run", "svc")
        assert run.returncode == 0, run.stderr
        assert (tmp_path / "results_dir" / "counts.txt").read_text().splitlines() == reference_counts(SAMPLE)
