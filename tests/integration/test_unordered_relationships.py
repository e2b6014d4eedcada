"""A relationship that does not order its ends (derived from tosca.relationships.Root, not HostedOn,
DependsOn or ConnectsTo) may join nodes in a cycle: valid TOSCA, planned and deployed. The two servers
come up independently; the relationship's operations run once both ends are started. A cycle over an
ordering relationship stays a problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).parent / "data" / "peers" / "peers.yaml"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_cycle_of_unordered_relationships_plans_and_deploys(tmp_path):
    home, log = tmp_path / "home", tmp_path / "log.txt"
    planned = orch(home, "plan", str(PEERS), "--set", f"log={log}", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    steps = {s["id"]: s for s in json.loads(planned.stdout)["steps"]}
    # no order between the servers' lifecycles: each create waits for nothing
    assert steps["one.create"]["after"] == [] and steps["two.create"]["after"] == []
    peering = [s for s in steps.values() if s["operation"] == "Configure.add_target"]
    assert len(peering) == 2
    assert all({"one.start", "two.start"} <= set(s["after"]) for s in peering)

    deployed = orch(home, "deploy", str(PEERS), "-n", "peers", "--set", f"log={log}")
    assert deployed.returncode == 0, deployed.stderr
    lines = log.read_text().splitlines()
    assert sorted(lines[:2]) == ["started one", "started two"]
    assert sorted(lines[2:]) == ["peered one with two", "peered two with one"]


def test_a_cycle_of_ordering_relationships_is_still_a_problem(tmp_path):
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text(PEERS.read_text().replace("derived_from: tosca.relationships.Root",
                                                "derived_from: tosca.relationships.DependsOn"))
    (tmp_path / "started.yaml").write_text((PEERS.parent / "started.yaml").read_text())
    (tmp_path / "peered.yaml").write_text((PEERS.parent / "peered.yaml").read_text())
    refused = orch(tmp_path / "home", "validate", str(cyclic), "--set", "log=/tmp/x")
    assert refused.returncode == 2
    assert "requirement cycle: one -> two -> one" in refused.stderr
