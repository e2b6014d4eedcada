"""The benchmark kit works end to end: topologies of every shape are generated and valid for orch, and
the quick run produces numbers for orch and the floor. No timing is asserted: numbers on a shared
machine are noise for a test; benchmarks/run.py is where they are read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))  # the kit's modules import each other by their plain names

from shapes import dependencies, waves  # noqa: E402 - after the sys.path line above


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.parametrize("shape,nodes", [("chain", 4), ("wide", 5), ("tree", 7)])
def test_generated_topology_has_the_nodes_and_orch_accepts_it(tmp_path, shape, nodes):
    out = tmp_path / shape
    generated = run(
        str(BENCH / "generate.py"),
        "--shape",
        shape,
        "--nodes",
        str(nodes),
        "--sleep",
        "1",
        "--teardown",
        "--out",
        str(out),
    )
    assert generated.returncode == 0, generated.stderr

    document = yaml.safe_load((out / "topology.yaml").read_text())
    assert document["tosca_definitions_version"] == "tosca_simple_yaml_1_3"
    assert len(document["topology_template"]["node_templates"]) == nodes
    for op in ("create", "configure", "start", "stop", "delete"):
        assert (out / "playbooks" / f"{op}.yaml").is_file()
    assert "sleep 1" in (out / "playbooks" / "create.yaml").read_text()
    assert "sleep" not in (out / "playbooks" / "configure.yaml").read_text()

    validated = run("-m", "orchestrator.cli", "validate", str(out / "topology.yaml"))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert f"({nodes} nodes" in validated.stdout


def test_waves_follow_the_dependencies():
    assert waves(dependencies("chain", 3)) == [["n0001"], ["n0002"], ["n0003"]]
    assert waves(dependencies("wide", 3)) == [["n0001", "n0002", "n0003"]]
    assert waves(dependencies("tree", 6)) == [["n0001"], ["n0002", "n0003"], ["n0004", "n0005", "n0006"]]
    assert len(waves(dependencies("chain", 3000))) == 3000  # deep chains do not hit the recursion limit


def test_quick_run_reports_numbers_for_orch_and_the_floor(tmp_path):
    out = tmp_path / "out.json"
    finished = run(
        str(BENCH / "run.py"), "--cases", "quick", "--repeats", "1", "--json", str(out), timeout=600
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"chain-3", "wide-3"}
    for case in results.values():
        for tool in ("orch", "floor"):
            median = case["tools"][tool]["median"]
            for key in ("deploy_wall_s", "total_wall_s", "total_cpu_s", "tree_peak_rss_mb"):
                assert isinstance(median[key], (int, float)), (tool, key, median)
        assert isinstance(case["tools"]["orch"]["median"]["self_rss_mb"], (int, float))
        assert isinstance(case["ratios"]["orch/floor"]["total_wall_s"], float)
    assert "orch" in finished.stdout and "floor" in finished.stdout  # the table
