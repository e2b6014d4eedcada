"""The eFlows4HPC minimal workflow on the embedded site with a catalogued dataset, as the issue's user does
it: `orch catalogue add`, then `orch run wc --set dataset=catalogue:wordcount-sample`; the word counts are
those of a run given the plain path, and those of an independent count."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from orchestrator.catalogue import dataset_digest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT, check=False)


def reference(folder: Path) -> list[str]:
    """The documented word rule, with collections.Counter: independent of the app and its kernels."""
    counter: Counter[str] = Counter()
    for path in folder.glob("*.txt"):
        counter.update(re.findall(r"[a-z0-9]+", path.read_text(encoding="utf-8", errors="replace").lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def test_a_catalogued_dataset_gives_the_results_of_its_plain_path(tmp_path):
    home = tmp_path / "home"
    overrides = [a for key in ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir")
                 for a in ("--set", f"{key}={tmp_path / key}")]
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "wc", "-i", str(SITE), *overrides)
    assert deployed.returncode == 0, deployed.stderr

    size, checksum = dataset_digest(SAMPLE)
    record = tmp_path / "wordcount-sample.yaml"
    record.write_text(yaml.safe_dump({
        "id": "wordcount-sample", "title": "The word count's sample texts", "locations": [f"data:{SAMPLE}"],
        "size": size, "sha256": checksum, "licence": "CC-BY-4.0", "keywords": ["wordcount", "text"],
        "created_by": "tests"}))
    assert orch(home, "catalogue", "add", str(record)).returncode == 0

    by_id = orch(home, "run", "wc", "--set", "dataset=catalogue:wordcount-sample",
                 "--set", f"result_data_path={tmp_path / 'by-id'}")
    assert by_id.returncode == 0, by_id.stderr
    by_path = orch(home, "run", "wc", "--set", f"dataset=data:{SAMPLE}",
                   "--set", f"result_data_path={tmp_path / 'by-path'}")
    assert by_path.returncode == 0, by_path.stderr
    counts = (tmp_path / "by-id" / "counts.txt").read_text().splitlines()
    assert counts == (tmp_path / "by-path" / "counts.txt").read_text().splitlines() == reference(SAMPLE)
    assert orch(home, "undeploy", "wc").returncode == 0
