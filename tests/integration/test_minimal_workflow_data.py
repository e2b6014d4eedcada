"""The minimal workflow's data on the embedded site, through the CLI: a second run into the same staged-in
folder counts exactly its own dataset (the target is replaced, not merged into), the result folder holds
exactly what the job produced, results and the image are readable like ordinary files; and a build that
the image-creation service reports FAILED fails the deploy with the service's message."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .image_service_double import ImageServiceDouble

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          check=False, capture_output=True, text=True, timeout=900, cwd=ROOT)


def reference(folder: Path) -> list[str]:
    """The documented word rule, with collections.Counter: independent of the app and its kernels."""
    counter: Counter[str] = Counter()
    for path in folder.glob("*.txt"):
        counter.update(re.findall(r"[a-z0-9]+", path.read_text(encoding="utf-8", errors="replace").lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def site_overrides(root: Path) -> list[str]:
    return [a for key in ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir")
            for a in ("--set", f"{key}={root / key}")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded-data")
    home = root / "home"
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(SITE), *site_overrides(root))
    assert deployed.returncode == 0, deployed.stderr
    return home, root


def test_a_second_dataset_replaces_the_first_in_the_same_staged_folder(site, tmp_path):
    home, root = site
    staged = root / "data_dir" / "wordcount-input"  # the default staged_in_data_path
    results = root / "results_dir"
    first = orch(home, "run", "wordcount")
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in staged.iterdir()) == sorted(p.name for p in SAMPLE.iterdir())
    assert (results / "counts.txt").read_text().splitlines() == reference(SAMPLE)

    second = tmp_path / "second"
    second.mkdir()
    (second / "one.txt").write_text("Gamma beta alpha gamma\nGAMMA, beta!\n")
    (second / "two.txt").write_text("delta 42 delta\n")
    (results / "stale-from-elsewhere.txt").write_text("not produced by the job\n")
    ran = orch(home, "run", "wordcount", "--set", f"dataset={second}")
    assert ran.returncode == 0, ran.stderr
    assert sorted(p.name for p in staged.iterdir()) == ["one.txt", "two.txt"]
    job_output = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["job_output"]).read_text()
    assert "wordcount: 2 files, 9 words, 5 distinct" in job_output
    assert sorted(p.name for p in results.iterdir()) == ["counts.txt"]
    assert (results / "counts.txt").read_text().splitlines() == reference(second) == [
        "gamma 3", "beta 2", "delta 2", "42 1", "alpha 1"]


def test_results_and_image_are_readable_like_ordinary_files(site):
    home, root = site
    if not (root / "results_dir" / "counts.txt").exists():
        assert orch(home, "run", "wordcount").returncode == 0
    for path in (root / "results_dir").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
    assert stat.S_IMODE((root / "results_dir").stat().st_mode) == 0o755
    image = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["image_path"])
    for path in [image, *image.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o755, path  # traversable: the app folder was 0644 once
        else:
            assert mode & 0o644 == 0o644 and not mode & 0o022, (path, oct(mode))


def test_an_image_build_the_service_reports_failed_fails_the_deploy(tmp_path):
    home = tmp_path / "home"
    with ImageServiceDouble(fail_with="no base image for linux/amd64 on this build farm") as service:
        deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "svc", "-i", str(SITE), *site_overrides(tmp_path),
                        "--set", "image_backend=service", "--set", f"image_service_url={service.url}")
    assert deployed.returncode == 1
    assert "image Standard.create" in deployed.stderr
    assert "image build 1 failed: no base image for linux/amd64 on this build farm" in deployed.stderr
    assert "Traceback" not in deployed.stderr
    status = json.loads(orch(home, "status", "svc", "--json").stdout)
    assert status["status"] == "failed", status
