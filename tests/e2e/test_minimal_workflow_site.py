"""The eFlows4HPC minimal workflow on the simulated site: runtime and kernels installed offline on the
login host, the image built on the builder and moved to the cluster, the dataset staged in from the
data host, the word count run as a real Slurm job, results staged out to this machine and checked
against a reference computed here; a second run with other inputs; a second deploy that changes
nothing; undeploy removing what the deployment put on the hosts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def deployed(sim_site, tmp_path_factory):
    home = tmp_path_factory.mktemp("minimal-site") / "home"
    # the data host holds the datasets
    copied = subprocess.run(["scp", "-q", "-F", str(sim_site.ssh_config), "-r", str(SAMPLE), "data:/data/"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    result = orch(home, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(sim_site.directory / "site.yaml"))
    assert result.returncode == 0, result.stderr
    return home


def test_runtime_and_image_are_on_the_site(sim_site, deployed):
    outputs = json.loads(orch(deployed, "outputs", "wordcount", "--json").stdout)
    assert outputs["runtime_versions"]["wordcount-kernels"] == "1.0.0"
    image = outputs["image_path"]
    assert image.startswith("/scratch/images/wordcount-")
    assert sim_site.ssh("login", f"cd {image} && sha256sum -c --quiet files.sha256").returncode == 0
    assert sim_site.ssh("login", "/scratch/venv-wordcount/bin/python -c 'import wordcount_kernels'").returncode == 0
    # built on the builder, not on the login host
    assert sim_site.ssh("builder", f"test -f /opt/images/{Path(image).name}.tar.gz").returncode == 0
    assert sim_site.ssh("login", f"test -f /opt/images/{Path(image).name}.tar.gz").returncode == 1


def test_run_on_slurm_with_correct_results_twice(sim_site, deployed, tmp_path):
    results = tmp_path / "results"
    first = orch(deployed, "run", "wordcount", "--set", "dataset=data:/data/sample",
                 "--set", f"result_data_path={results}")
    assert first.returncode == 0, first.stderr
    texts = [p.read_text() for p in sorted(SAMPLE.glob("*.txt"))]
    assert (results / "counts.txt").read_text().splitlines() == reference(texts)
    job_output = json.loads(orch(deployed, "outputs", "wordcount", "--json").stdout)["job_output"]
    job_id = re.search(r"slurm-(\d+)\.out$", job_output).group(1)
    shown = sim_site.ssh("login", f"scontrol show job {job_id}").stdout
    assert "JobState=COMPLETED" in shown and "JobName=job" in shown
    # the input was staged from the data host onto the cluster, checksums verified on the way
    assert sim_site.ssh("login", "ls /data/wordcount-input").stdout.split() == sorted(p.name for p in SAMPLE.glob("*"))

    sim_site.ssh("data", "mkdir -p /data/other && printf 'one two two\\nthree three three\\n' > /data/other/x.txt")
    other = tmp_path / "other-results"
    second = orch(deployed, "run", "wordcount", "--set", "dataset=data:/data/other",
                  "--set", "staged_in_data_path=/data/other-input", "--set", f"result_data_path={other}")
    assert second.returncode == 0, second.stderr
    assert (other / "counts.txt").read_text().splitlines() == ["three 3", "two 2", "one 1"]


def test_a_large_dataset_is_streamed_from_the_data_host_to_the_cluster(sim_site, deployed, tmp_path):
    # 5.4 MB of text: above eflows_stream.STREAM_ALONE (4 MiB), so the tar stream from the data host to the
    # login host has an SSH connection of its own at each end, not the hosts' masters
    make = ("mkdir -p /data/large && python3 -c 'import sys; sys.stdout.write(\"alpha beta gamma\\n\" * 200000)'"
            " > /data/large/a.txt && python3 -c 'import sys; sys.stdout.write(\"beta gamma\\n\" * 100000)'"
            " > '/data/large/b c.txt'")
    assert sim_site.ssh("data", make).returncode == 0
    results = tmp_path / "large-results"
    ran = orch(deployed, "run", "wordcount", "--set", "dataset=data:/data/large",
               "--set", "staged_in_data_path=/data/large-input", "--set", f"result_data_path={results}")
    assert ran.returncode == 0, ran.stderr
    assert (results / "counts.txt").read_text().splitlines() == ["beta 300000", "gamma 300000", "alpha 200000"]
    logged = orch(deployed, "logs", "wordcount", ran.stdout.split()[0])
    assert "Move the dataset (checksums at the source, one tar stream" in logged.stdout
    listed = sim_site.ssh("login", "cd /data/large-input && find . -type f | sort && ls -a /data")
    assert listed.stdout.split("\n")[:2] == ["./a.txt", "./b c.txt"], listed.stdout
    assert ".orch-" not in listed.stdout  # no half-moved folder left next to the target


def test_deploying_twice_changes_nothing(sim_site, deployed):
    again = orch(deployed, "deploy", str(TOPOLOGY), "-n", "wordcount", "-i", str(sim_site.directory / "site.yaml"))
    assert again.returncode == 0, again.stderr
    store = Store(deployed)
    try:
        last = [e for e in store.executions("wordcount") if e.workflow == "install"][-1]
        changed = [e.message for e in store.events("wordcount", last.id) if e.kind == "task" and "changed" in e.message]
    finally:
        store.close()
    assert changed == []


def test_undeploy_removes_what_was_put_on_the_hosts(sim_site, deployed):
    image = json.loads(orch(deployed, "outputs", "wordcount", "--json").stdout)["image_path"]
    result = orch(deployed, "undeploy", "wordcount")
    assert result.returncode == 0, result.stderr
    assert sim_site.ssh("login", f"test -e {image} || test -e {image}.tar.gz || test -e /scratch/venv-wordcount"
                        ).returncode == 1
    assert sim_site.ssh("builder", f"ls /opt/images/{Path(image).name}.tar.gz").returncode != 0
    # nor the image tree on the builder and the staged-in copies of both runs; the builder's shared
    # sources and environment stay, and the datasets on the data host are not the deployment's
    assert sorted(sim_site.ssh("builder", "ls -A /opt/images").stdout.split()) == [".builder", "src"]
    for path in ("/data/wordcount-input", "/data/other-input"):
        assert sim_site.ssh("login", f"test -e {path}").returncode == 1, f"{path} is left on the login host"
    assert sim_site.ssh("data", "test -d /data/sample && test -d /data/other").returncode == 0
