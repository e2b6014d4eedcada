"""TOSCA as other people write it, through `orch validate`, `orch plan` and `orch deploy` on localhost:
short names of normative node, capability and data types, 1.3's Compute capability, requirements fulfilled
by matching a node type or a capability type, an implementation naming one of the node's artifacts, a
multi-character token separator, a typed output (tests/tosca/test_forms.py checks each form in detail)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORMS = Path(__file__).parent / "data" / "forms" / "forms.yaml"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_the_forms_validate_plan_and_deploy(tmp_path):
    home = tmp_path / "home"
    checked = orch(home, "validate", str(FORMS))
    assert checked.returncode == 0, checked.stderr
    assert "valid:" in checked.stdout and "(4 nodes" in checked.stdout
    planned = orch(home, "plan", str(FORMS), "--format", "json")
    assert planned.returncode == 0, planned.stderr
    after = {s["id"]: s["after"] for s in json.loads(planned.stdout)["steps"]}
    assert "dbms.start" in after["db.create"]  # db hosted on the one DBMS, found by its type
    assert "db.start" in after["app.configure"] or "db.start" in after["app.create"]  # by its capability
    deployed = orch(home, "deploy", str(FORMS), "-n", "forms")
    assert deployed.returncode == 0, deployed.stderr
    outputs = json.loads(orch(home, "outputs", "forms", "--json").stdout)
    assert outputs["said"] == "8080 b"  # the artifact named by the operation ran; token split on '-' or '_'


def test_a_requirement_two_templates_match_is_a_problem_naming_both(tmp_path):
    twice = tmp_path / "twice.yaml"
    text = FORMS.read_text().replace("    dbms:\n", "    dbms2:\n      type: DBMS\n      requirements:\n"
                                     "        - host: server\n    dbms:\n", 1)
    twice.write_text(text)
    (tmp_path / "said.yaml").write_text((FORMS.parent / "said.yaml").read_text())
    refused = orch(tmp_path / "home", "validate", str(twice))
    assert refused.returncode == 2
    assert "dbms" in refused.stderr and "dbms2" in refused.stderr, refused.stderr
