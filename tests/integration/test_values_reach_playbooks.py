"""Operation inputs reach the playbook with their type and value intact (through the inventory's
`!unsafe` marking), the empty string and template-looking text included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TOPOLOGY = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  test.Probe:
    derived_from: tosca.nodes.Root
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create:
          implementation: probe.yaml
          inputs:
            empty: { get_input: empty }
            text: "{{ lookup('env', 'HOME') }}"
            number: 3
            flag: false
            items: [ "", a ]
            out: { get_input: out }
topology_template:
  inputs:
    empty: { type: string, default: "" }
    out: { type: string }
  node_templates:
    probe: { type: test.Probe }
"""

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'empty': [empty, empty is none], 'text': text, 'number': number, 'flag': flag,
                      'items': items} | to_json }}"
"""


def test_values_reach_the_playbook_as_given(tmp_path):
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    (tmp_path / "probe.yaml").write_text(PLAYBOOK)
    out = tmp_path / "seen.json"
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(tmp_path / "home"), "deploy",
                           str(tmp_path / "topology.yaml"), "-n", "probe", "--set", f"out={out}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())
    assert seen["empty"] == ["", False], "an empty string must not reach the playbook as null"
    assert seen["text"] == "{{ lookup('env', 'HOME') }}", "an input's text must not be templated"
    assert seen["number"] == 3 and seen["flag"] is False and seen["items"] == ["", "a"]
