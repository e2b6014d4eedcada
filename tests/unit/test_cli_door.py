"""`orch validate` and `orch plan` through the API door: what validate says of a template whose required
inputs have no value yet and of a type library, that plan still refuses to plan without the values, and
that neither touches orch's home (no store is created by looking at a template)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NEEDS_AN_INPUT = """tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    where: { type: string }
    level: { type: integer, default: 1 }
  node_templates:
    thing:
      type: tosca.nodes.Root
"""

TYPE_LIBRARY = """tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  my.nodes.Thing:
    derived_from: tosca.nodes.Root
    properties:
      size: { type: integer, default: 3 }
"""


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_validate_lists_the_inputs_deploy_will_need_and_plan_refuses_without_them(tmp_path):
    topology = tmp_path / "needs.yaml"
    topology.write_text(NEEDS_AN_INPUT)
    home = tmp_path / "home"
    checked = orch(home, "validate", str(topology))
    assert checked.returncode == 0, checked.stderr
    assert "valid:" in checked.stdout and "deploy will need a value for: where" in checked.stdout
    assert "level" not in checked.stdout  # it has a default
    given = orch(home, "validate", str(topology), "--set", "where=/tmp/x")
    assert given.returncode == 0 and "will need" not in given.stdout
    planned = orch(home, "plan", str(topology))
    assert planned.returncode == 2
    assert "topology_template.inputs.where: required input has no value" in planned.stderr
    assert not home.exists(), "looking at a template created orch's home"


def test_a_type_library_validates_on_its_own(tmp_path):
    library = tmp_path / "types.yaml"
    library.write_text(TYPE_LIBRARY)
    checked = orch(tmp_path / "home", "validate", str(library))
    assert checked.returncode == 0, checked.stderr
    assert "a type library" in checked.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(TYPE_LIBRARY.replace("tosca.nodes.Root", "no.such.Parent"))
    refused = orch(tmp_path / "home", "validate", str(broken))
    assert refused.returncode == 2 and "no.such.Parent" in refused.stderr


def test_a_deployment_name_that_could_climb_out_of_orchs_home_is_refused(tmp_path):
    """The name is a folder under $ORCH_HOME/deployments that undeploy removes: '..' would be the home."""
    topology = tmp_path / "t.yaml"
    topology.write_text(NEEDS_AN_INPUT)
    home = tmp_path / "home"
    for name in ("..", "../elsewhere", ".hidden", "a/b", "-rf"):
        refused = orch(home, "deploy", str(topology), "-n", name, "--set", "where=x")
        assert refused.returncode == 2, (name, refused.stderr)
        assert "invalid deployment name" in refused.stderr, (name, refused.stderr)
    assert not home.exists() or not any(home.rglob("*.db")), "a refused name wrote a store"
