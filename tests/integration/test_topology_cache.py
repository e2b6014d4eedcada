"""What load produced is kept with the deployment (topology.cache): undeploy, run, status and outputs of an
unchanged deployment never import tosca-parser; a changed template or import is loaded again (its new
values show); a corrupt cache is loaded around; the cache is 0600 and a deployment with secret inputs is
never cached. Real playbooks on localhost, the CLI in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = "TOSCAPARSER-IMPORTED="
# the CLI as `python -m orchestrator.cli`, telling at exit whether tosca-parser was imported
PROBE = ("import atexit, runpy, sys\n"
         f"atexit.register(lambda: sys.stderr.write('\\n{MARK}%s\\n' % "
         "any(m.split('.')[0] == 'toscaparser' for m in sys.modules)))\n"
         "sys.argv = ['orch', *sys.argv[1:]]\n"
         "runpy.run_module('orchestrator.cli', run_name='__main__', alter_sys=True)\n")

TYPES = """tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  cachetest.Greeter:
    derived_from: tosca.nodes.Root
    properties:
      greeting: { type: string, default: GREETING }
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create:
          implementation: say.yaml
          inputs: { text: { get_property: [ SELF, greeting ] }, out: { get_input: out_file } }
"""
TEMPLATE = """tosca_definitions_version: tosca_simple_yaml_1_3
imports: [ types.yaml ]
topology_template:
  inputs:
    out_file: { type: string }
    label: { type: string, default: LABEL }
    SECRET_INPUT
  node_templates:
    greeter: { type: cachetest.Greeter }
  outputs:
    greeting: { value: { get_property: [ greeter, greeting ] } }
    label: { value: { get_input: label } }
  workflows:
    greet:
      steps:
        say:
          target: greeter
          activities:
            - call_operation: Standard.create
"""
PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ text }}\\n"
        dest: "{{ out }}"
"""


def orch(home: Path, *args: str) -> tuple[subprocess.CompletedProcess, bool]:
    """The command's result, and whether it imported tosca-parser."""
    result = subprocess.run([sys.executable, "-c", PROBE, "--home", str(home), *args],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    marks = [line for line in result.stderr.splitlines() if line.startswith(MARK)]
    assert marks, result.stderr
    return result, marks[-1] == f"{MARK}True"


def write_topology(folder: Path, greeting: str = "hello", label: str = "first", secret: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "types.yaml").write_text(TYPES.replace("GREETING", greeting))
    (folder / "topology.yaml").write_text(TEMPLATE.replace("LABEL", label).replace(
        "SECRET_INPUT", "api_token: { type: string }" if secret else ""))
    (folder / "say.yaml").write_text(PLAYBOOK)
    return folder / "topology.yaml"


def outputs(home: Path, name: str) -> tuple[dict, bool]:
    result, parsed = orch(home, "outputs", name, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), parsed


@pytest.fixture
def deployed(tmp_path):
    home, out = tmp_path / "home", tmp_path / "out.txt"
    template = write_topology(tmp_path / "topo")
    result, _ = orch(home, "deploy", str(template), "-n", "cached", "--set", f"out_file={out}")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "hello\n"
    return home, tmp_path / "topo", out


def cache_file(home: Path, name: str) -> Path:
    return home / "deployments" / name / "topology.cache"


def test_an_unchanged_deployment_is_run_shown_and_undeployed_without_tosca_parser(deployed):
    home, _, out = deployed
    assert cache_file(home, "cached").is_file()  # written by the deploy itself
    values, parsed = outputs(home, "cached")
    assert values == {"greeting": "hello", "label": "first"} and not parsed
    status, parsed = orch(home, "status", "cached", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["status"] == "deployed" and not parsed
    out.unlink()
    ran, parsed = orch(home, "run", "cached", "-w", "greet")
    assert ran.returncode == 0, ran.stderr
    assert out.read_text() == "hello\n" and not parsed
    undeployed, parsed = orch(home, "undeploy", "cached")
    assert undeployed.returncode == 0, undeployed.stderr
    assert not parsed
    assert not cache_file(home, "cached").parent.exists()  # gone with the deployment


def test_a_changed_import_or_template_is_loaded_again(deployed):
    home, folder, out = deployed
    write_topology(folder, greeting="bonjour")  # the imported types file's default changes
    values, parsed = outputs(home, "cached")
    assert values["greeting"] == "bonjour" and parsed
    values, parsed = outputs(home, "cached")  # kept again
    assert values["greeting"] == "bonjour" and not parsed
    write_topology(folder, greeting="bonjour", label="second")  # the template itself changes
    values, parsed = outputs(home, "cached")
    assert values == {"greeting": "bonjour", "label": "second"} and parsed
    ran, _ = orch(home, "run", "cached", "-w", "greet")
    assert ran.returncode == 0, ran.stderr
    assert out.read_text() == "bonjour\n"


def test_a_corrupt_cache_is_loaded_around_and_replaced(deployed):
    home, _, _ = deployed
    cache_file(home, "cached").write_bytes(b"\x80\x05not a pickle at all")
    values, parsed = outputs(home, "cached")
    assert values["greeting"] == "hello" and parsed
    values, parsed = outputs(home, "cached")
    assert values["greeting"] == "hello" and not parsed
    cache_file(home, "cached").write_bytes(b"")
    undeployed, _ = orch(home, "undeploy", "cached")
    assert undeployed.returncode == 0, undeployed.stderr


def test_a_cache_others_could_write_is_not_read(deployed):
    home, _, _ = deployed
    cache_file(home, "cached").chmod(0o666)
    values, parsed = outputs(home, "cached")
    assert values["greeting"] == "hello" and parsed  # loaded again, and kept again 0600
    assert cache_file(home, "cached").stat().st_mode & 0o777 == 0o600


def test_the_cache_is_private_and_a_deployment_with_secret_inputs_is_not_cached(deployed, tmp_path):
    home, _, _ = deployed
    assert cache_file(home, "cached").stat().st_mode & 0o777 == 0o600
    secret_value = "s3cret-value-that-must-not-be-kept"
    template = write_topology(tmp_path / "secret", secret=True)
    result, _ = orch(home, "deploy", str(template), "-n", "withsecret", "--set", f"out_file={tmp_path / 's.txt'}",
                     "--set", f"api_token={secret_value}")
    assert result.returncode == 0, result.stderr
    values, parsed = outputs(home, "withsecret")
    assert values["greeting"] == "hello" and parsed  # loaded each time: nothing kept
    assert not cache_file(home, "withsecret").exists()
    kept = b"".join(p.read_bytes() for p in (home / "deployments").rglob("*") if p.is_file())
    assert secret_value.encode() not in kept
