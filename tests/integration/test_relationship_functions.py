"""Functions on relationship templates and attribute mappings (issue 15), through `orch validate` and
`orch deploy` on localhost with real playbooks (tests/integration/data/relationship_functions/): a node reads
get_property of a relationship template; a relationship's operation maps an output onto the relationship's
attribute (and its target's), which a later node reads with get_attribute; a node's operation maps outputs
onto its own attribute and another node's; and the refusals, with exit code 2 and the place named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.model import relationship_key
from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "relationship_functions"


def orch(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def recorded(work: Path, name: str) -> dict:
    return json.loads((work / f"{name}.json").read_text())


def test_relationship_properties_and_mapped_attributes_flow_between_operations(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    topology = str(DATA / "topology.yaml")
    validated = orch(home, "validate", topology, "--set", f"workdir={work}")
    assert validated.returncode == 0, validated.stdout + validated.stderr

    deployed = orch(home, "deploy", topology, "-n", "rf", "--set", f"workdir={work}")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Traceback" not in deployed.stderr

    # SELF in the relationship's operation is the relationship: the template's port, the type's channel;
    # TARGET's attribute token was set by server's create through its mapping [SELF, token]
    assert recorded(work, "link_pre_configure_source") == {"port": 8080, "channel": "plain",
                                                           "token": "token-of-server"}
    # a node's input reads get_property of the relationship template; its own attribute note was set by
    # another node's operation (server's create maps note_for_client onto [client, note])
    assert recorded(work, "client_configure") == {"port": 8080, "channel": "plain", "note": "server says hello"}
    # a later node reads the relationship's attribute, set by the relationship operation's mapping
    # [SELF, session], and the one it mapped onto its target ([TARGET, greeted_by])
    assert recorded(work, "report_start") == {"session": "session-8080-token-of-server", "token": "token-of-server",
                                              "note": "server says hello", "greeted_by": "greeted by client"}

    outputs = json.loads(orch(home, "outputs", "rf", "--json").stdout)
    assert outputs == {"session": "session-8080-token-of-server", "link_port": 8080}
    status = json.loads(orch(home, "status", "rf", "--json").stdout)
    assert status["nodes"]["server"]["attributes"] == {"token": "token-of-server", "greeted_by": "greeted by client"}
    assert status["nodes"]["client"]["attributes"] == {"note": "server says hello"}

    store = Store(home)
    try:
        # the relationship's attributes are kept apart from its source's, under its own key
        assert store.attributes("rf")[relationship_key("client", 0)] == {"session": "session-8080-token-of-server"}
        assert "session" not in store.attributes("rf").get("client", {})
    finally:
        store.close()


def refused(tmp_path: Path, old: str, new: str) -> str:
    """`orch validate` of the topology with one change: exit 2, nothing deployed; the problems printed."""
    folder = tmp_path / f"topology-{len(list(tmp_path.glob('topology-*')))}"
    shutil.copytree(DATA, folder)
    text = (folder / "topology.yaml").read_text()
    assert old in text
    (folder / "topology.yaml").write_text(text.replace(old, new))
    result = orch(tmp_path / "home", "validate", str(folder / "topology.yaml"), "--set", "workdir=/nowhere")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout + result.stderr


def test_an_unknown_relationship_template_is_refused(tmp_path):
    said = refused(tmp_path, "port: { get_property: [ link, port ] }", "port: { get_property: [ lnk, port ] }")
    assert ("node_templates.client.interfaces.Standard.configure.inputs.values.port: get_property refers to "
            "unknown node 'lnk'") in said


def test_an_unknown_attribute_in_a_mapping_is_refused(tmp_path):
    said = refused(tmp_path, "session_id: [ SELF, session ]", "session_id: [ SELF, sesion ]")
    assert ("node_templates.client.requirements[0].relationship.interfaces.Configure.pre_configure_source.outputs"
            ".session_id: maps onto attribute 'sesion', which relationship template 'link' does not declare") in said
    said = refused(tmp_path, "made_token: [ SELF, token ]", "made_token: [ SELF, tokn ]")
    assert ("node_templates.server.interfaces.Standard.create.outputs.made_token: maps onto attribute 'tokn', "
            "which node 'server' does not declare") in said


def test_an_unknown_entity_in_a_mapping_is_refused(tmp_path):
    said = refused(tmp_path, "note_for_client: [ client, note ]", "note_for_client: [ clinet, note ]")
    assert ("node_templates.server.interfaces.Standard.create.outputs.note_for_client: maps onto unknown entity "
            "'clinet'") in said
