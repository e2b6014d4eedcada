"""Hostile values through the eFlows4HPC minimal workflow on the embedded site, through the CLI: shell
substitutions, backquotes, quotes, ';', '|', '&&', spaces, a newline, a glob, Jinja, option-looking names.
They go into the deployment's own folders (deploy), dataset folder and file names (stage-in, from the
controller and from a host), the staged-in and cluster results paths (the job's arguments) and the result
folder (stage-out). A marker file that one of them would create if it reached a shell must never appear;
each value must arrive byte for byte (folder and file names at the target, the job's arguments as the job
saw them) or be refused with a message that names the node and the value."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"

MARK = f"ORCHMARK{os.getpid()}"  # what `touch` would create, in whatever folder the shell was in
HOSTILE = [v.replace("M", MARK) for v in [
    "x$(touch M)y", "x`touch M`y", 'x";touch M;"y', "x';touch M;'y", "x;touch M", "x|touch M", "x&&touch M",
    "a  b\tc", "line\nbreak", "--help", "-rf", "*", "back\\slash", "{{ lookup('pipe', 'touch M') }}",
    "$HOME", "x$(touch M)\n`touch M`'\"",
]]


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          check=False, capture_output=True, text=True, timeout=900, cwd=ROOT)


def reference(folder: Path) -> list[str]:
    """The documented word rule, with collections.Counter: independent of the app and its kernels."""
    counter: Counter[str] = Counter()
    for path in folder.iterdir():
        if path.is_file() and path.name.endswith(".txt"):
            counter.update(re.findall(r"[a-z0-9]+", path.read_text(encoding="utf-8", errors="replace").lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def markers(*places: Path) -> list[str]:
    """Marker files anywhere under `places`, and in the folders a shell may have started in."""
    found = []
    for place in (*places, ROOT / "playbooks"):  # a local connection's shell starts in the playbook's folder
        found += [str(p) for p in place.rglob(f"*{MARK}*") if p.name == MARK]
    for folder in (ROOT, Path.home(), Path("/tmp"), Path.cwd()):
        if (folder / MARK).exists():
            found.append(str(folder / MARK))
    return found


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    # the site's own folders live under a hostile name too: every deploy-time playbook handles it
    root = tmp_path_factory.mktemp("hostile") / HOSTILE[-1].replace("\n", " ")
    home = root / "home"
    overrides = [a for key in ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir")
                 for a in ("--set", f"{key}={root / key}")]
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(SITE), *overrides)
    assert deployed.returncode == 0, deployed.stderr
    assert markers(root) == []
    return home, root


def test_the_image_is_usable_by_anyone(site):
    home, _ = site
    image = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["image_path"])
    for folder in (image, image / "app", image / "site-packages"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    assert stat.S_IMODE((image / "app" / "wordcount.py").stat().st_mode) & 0o044 == 0o044


# Each run gives four different hostile values to the four places a value goes; over the runs each value
# is a folder name in two of them. The files of every dataset are named after all the values.
RUNS = [[HOSTILE[(k * 4 + r) % len(HOSTILE)] for r in range(4)] for k in range(8)]


@pytest.mark.parametrize("run", range(len(RUNS)))
def test_hostile_values_arrive_byte_for_byte_and_run_nothing(site, run):
    home, root = site
    dataset_name, staged_name, results_name, result_name = RUNS[run]
    dataset = root / "datasets" / str(run) / dataset_name
    dataset.mkdir(parents=True)
    for i, value in enumerate(HOSTILE):
        (dataset / f"{value}.txt").write_text(f"word{i} common {value}\n")
    staged = root / "data_dir" / str(run) / staged_name
    cluster_results = root / "work_dir" / str(run) / results_name
    results = root / "results_dir" / str(run) / result_name
    source = f"data:{dataset}" if run % 2 else str(dataset)  # from a host (ssh kind) or from the controller
    ran = orch(home, "run", "wordcount", "--set", f"dataset={source}", "--set", f"staged_in_data_path={staged}",
               "--set", f"cluster_results_path={cluster_results}", "--set", f"result_data_path={results}")
    assert ran.returncode == 0, ran.stderr
    assert markers(root) == []
    # stage-in: the target holds the dataset, names byte for byte
    assert names(staged) == names(dataset) == sorted(f"{v}.txt" for v in HOSTILE)
    # the job saw both of its arguments as they were given (the app prints its output file's path)
    job_output = Path(json.loads(orch(home, "outputs", "wordcount", "--json").stdout)["job_output"]).read_text()
    assert f"wordcount: {len(HOSTILE)} files, " in job_output
    assert job_output.rstrip("\n").endswith(f" -> {cluster_results}/counts.txt")
    # stage-out: exactly what the job produced, readable like an ordinary file
    assert names(results) == ["counts.txt"]
    assert (results / "counts.txt").read_text().splitlines() == reference(dataset)
    assert stat.S_IMODE((results / "counts.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("key, value, problem", [
    ("staged_in_data_path", "{root}/data_dir/../escape", "'.' or '..' components is refused"),
    ("result_data_path", "{root}/results_dir/./x/../../escape", "'.' or '..' components is refused"),
    ("staged_in_data_path", "/", "/ or a top-level folder is refused"),
    ("dataset", "relative/x$(touch M)".replace("M", MARK), "a controller path must be absolute"),
])
def test_refused_values_fail_with_a_message_naming_them(site, key, value, problem):
    home, root = site
    value = value.format(root=root)
    ran = orch(home, "run", "wordcount", "--set", f"{key}={value}")
    assert ran.returncode == 1
    assert problem in ran.stderr and value in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (root / "escape").exists() and markers(root) == []
