"""Functions on relationship templates and attribute mappings in operation outputs (issue 15), through `check`
and `load`: what the model holds, how get_property/get_attribute of a relationship evaluate against a store
(a dict), which store keys an operation's success sets, and each refusal with its place. The deploys on
localhost are in tests/integration/test_relationship_functions.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.engine.evaluate import Context, evaluate
from orchestrator.engine.operations import attribute_updates
from orchestrator.functions import FunctionError
from orchestrator.model import LoadError, Problem, Step, Topology, relationship_key
from orchestrator.tosca.loader import check, load

HEADER = "tosca_definitions_version: tosca_simple_yaml_1_3\n"

TYPES = """
    relationship_types:
      t.Link:
        derived_from: tosca.relationships.ConnectsTo
        properties:
          port: { type: integer, default: 80 }
          channel: { type: string, default: plain }
        attributes:
          session: { type: string }
          since: { type: string, default: never }
    node_types:
      t.Node:
        derived_from: tosca.nodes.Root
        attributes:
          token: { type: string }
          note: { type: string }
"""

TOPOLOGY = TYPES + """
    topology_template:
      inputs:
        port: { type: integer, default: 8080 }
      relationship_templates:
        link:
          type: t.Link
          properties: { port: { get_input: port } }
          interfaces:
            Configure:
              pre_configure_source:
                implementation: noop.yaml
                inputs:
                  port: { get_property: [ SELF, port ] }
                  session: { get_attribute: [ SELF, session ] }
                  token: { get_attribute: [ TARGET, token ] }
                outputs:
                  session_id: [ SELF, session ]
                  greeting: [ TARGET, note ]
                  seen: [ SOURCE, note ]
      node_templates:
        server:
          type: t.Node
          interfaces:
            Standard:
              create:
                implementation: noop.yaml
                outputs:
                  made: [ SELF, token ]
                  for_client: [ client, note ]
                  for_link: { type: string, mapping: [ link, session ] }
                  declared_only: { type: string }
        client:
          type: t.Node
          requirements:
            - dependency: { node: server, relationship: link }
            - dependency:
                node: server
                relationship:
                  type: t.Link
                  properties: { channel: tls }
                  interfaces:
                    Configure:
                      post_configure_source:
                        implementation: noop.yaml
                        outputs: { opened: [ SELF, since ] }
          interfaces:
            Standard:
              configure:
                implementation: noop.yaml
                inputs:
                  port: { get_property: [ link, port ] }
                  channel: { get_property: [ link, channel ] }
                  session: { get_attribute: [ link, session ] }
      outputs:
        session: { value: { get_attribute: [ link, session ] } }
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "noop.yaml").write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    path = tmp_path / "t.yaml"
    path.write_text(HEADER + textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[Problem]:
    with pytest.raises(LoadError) as caught:
        check(write(tmp_path, text))
    return caught.value.problems


def find(found: list[Problem], place: str, message: str) -> Problem:
    for problem in found:
        if problem.place == place and message in problem.message:
            return problem
    raise AssertionError(f"no problem at {place!r} containing {message!r} in:\n" + "\n".join(map(str, found)))


@pytest.fixture
def topology(tmp_path) -> Topology:
    return load(write(tmp_path, TOPOLOGY))


def context(topology: Topology, node: str | None, stored: dict, *, source: str | None = None,
            target: str | None = None, requirement: int | None = None) -> Context:
    return Context(topology, node, dict(topology.input_values), read_attribute=lambda n, a: stored.get((n, a)),
                   read_operation_output=lambda n, op, o: None, source=source, target=target,
                   requirement=requirement)


# -- the model ------------------------------------------------------------------------------------------


def test_the_model_holds_relationship_templates_their_uses_and_the_mappings(topology):
    link = topology.relationship_templates["link"]
    assert (link.type, dict(link.properties)) == ("t.Link", {"port": {"get_input": "port"}, "channel": "plain"})
    assert dict(link.attributes) == {"tosca_id": None, "tosca_name": None, "session": None, "since": "never"}
    assert link.instances == (("client", 0),)
    named, inline = topology.nodes["client"].requirements
    assert (named.template, inline.template) == ("link", None)
    assert dict(inline.properties) == {"port": 80, "channel": "tls"}  # the type's default, then its own
    create = topology.nodes["server"].operations["Standard.create"]
    # an output declared without a mapping maps nothing
    assert dict(create.outputs) == {"made": ("SELF", "token"), "for_client": ("client", "note"),
                                    "for_link": ("link", "session")}
    assert dict(named.operations["Configure.pre_configure_source"].outputs) == {
        "session_id": ("SELF", "session"), "greeting": ("TARGET", "note"), "seen": ("SOURCE", "note")}


def test_a_type_s_mapping_is_refined_by_the_template_s(tmp_path):
    topology = load(write(tmp_path, """
        node_types:
          t.Node:
            derived_from: tosca.nodes.Root
            attributes: { a: { type: string }, b: { type: string } }
            interfaces:
              Standard:
                type: tosca.interfaces.node.lifecycle.Standard
                create: { implementation: noop.yaml, outputs: { x: [ SELF, a ], y: [ SELF, a ] } }
        topology_template:
          node_templates:
            n:
              type: t.Node
              interfaces: { Standard: { create: { outputs: { y: [ SELF, b ] } } } }
        """))
    assert dict(topology.nodes["n"].operations["Standard.create"].outputs) == {"x": ("SELF", "a"), "y": ("SELF", "b")}


# -- evaluation -----------------------------------------------------------------------------------------


def test_get_property_of_a_relationship_template_and_of_self_in_its_operation(topology):
    assert evaluate({"get_property": ["link", "port"]}, context(topology, "client", {})) == 8080  # get_input
    assert evaluate({"get_property": ["link", "channel"]}, context(topology, "server", {})) == "plain"
    in_link = context(topology, "client", {}, source="client", target="server", requirement=0)
    in_inline = context(topology, "client", {}, source="client", target="server", requirement=1)
    assert evaluate({"get_property": ["SELF", "port"]}, in_link) == 8080
    assert evaluate({"get_property": ["SELF", "channel"]}, in_inline) == "tls"
    with pytest.raises(FunctionError, match="no property 'nope'"):
        evaluate({"get_property": ["link", "nope"]}, in_link)


def test_get_attribute_of_a_relationship_reads_its_own_key(topology):
    key = relationship_key("client", 0)
    assert key == "client.requirements[0]"
    stored = {(key, "session"): "s-1", ("client", "session"): "not this one"}
    assert evaluate({"get_attribute": ["link", "session"]}, context(topology, "server", stored)) == "s-1"
    in_link = context(topology, "client", stored, source="client", target="server", requirement=0)
    assert evaluate({"get_attribute": ["SELF", "session"]}, in_link) == "s-1"
    assert evaluate({"get_attribute": ["SELF", "since"]}, in_link) == "never"  # the declared default
    assert evaluate({"get_attribute": ["SELF", "port"]}, in_link) == 8080  # a property, readable as an attribute
    assert evaluate({"get_attribute": ["link", "tosca_name"]}, in_link) == "link"
    in_inline = context(topology, "client", stored, source="client", target="server", requirement=1)
    assert evaluate({"get_attribute": ["SELF", "session"]}, in_inline) is None  # another relationship: not set
    # the other functions still read SELF as the source node; TARGET is the target node
    assert evaluate({"get_attribute": ["TARGET", "tosca_name"]}, in_link) == "server"


def test_what_a_success_sets_by_store_key(topology):
    facts = {"made": "t-1", "for_client": "hi", "for_link": "s-0", "token": "by name", "unrelated": 1}
    assert attribute_updates(topology, Step("server.create", "server", operation="Standard.create"), facts) == {
        "server": {"token": "t-1"},  # the mapping wins over the fact named like the attribute
        "client": {"note": "hi"}, "client.requirements[0]": {"session": "s-0"}}
    relationship = Step("r", "client", operation="Configure.pre_configure_source", requirement=0, side="source")
    assert attribute_updates(topology, relationship, {"session_id": "s-9", "greeting": "g", "seen": "x",
                                                      "note": "no convention for relationships"}) == {
        "client.requirements[0]": {"session": "s-9"}, "server": {"note": "g"}, "client": {"note": "x"}}
    inline = Step("q", "client", operation="Configure.post_configure_source", requirement=1, side="source")
    assert attribute_updates(topology, inline, {"opened": "now"}) == {"client.requirements[1]": {"since": "now"}}
    # an output the implementation did not set changes nothing
    assert attribute_updates(topology, inline, {}) == {}


def test_a_topology_output_reads_a_relationship_attribute(topology):
    stored = {(relationship_key("client", 0), "session"): "s-2"}
    assert evaluate(topology.outputs["session"], context(topology, None, stored)) == "s-2"


# -- refusals -------------------------------------------------------------------------------------------

CLIENT_OP = "node_templates.client.interfaces.Standard.configure"
LINK_OP = "node_templates.client.requirements[0].relationship.interfaces.Configure.pre_configure_source"
SERVER_OP = "node_templates.server.interfaces.Standard.create"


def test_an_unknown_relationship_template_is_refused(tmp_path):
    found = problems(tmp_path, TOPOLOGY.replace("get_property: [ link, port ]", "get_property: [ lnik, port ]"))
    find(found, f"{CLIENT_OP}.inputs.port", "get_property refers to unknown node 'lnik' (use SELF, SOURCE, "
                                            "TARGET, HOST or a node or relationship template name)")


def test_what_a_relationship_has_not_is_refused(tmp_path):
    found = problems(tmp_path, TOPOLOGY.replace("get_property: [ link, channel ]", "get_property: [ link, chanel ]")
                     .replace("get_property: [ SELF, port ]", "get_property: [ SELF, prot ]")
                     .replace("get_attribute: [ SELF, session ]", "get_attribute: [ SELF, sesion ]")
                     .replace("value: { get_attribute: [ link, session ] }", "value: { get_attribute: [ link, x ] }"))
    find(found, f"{CLIENT_OP}.inputs.channel", "relationship template 'link' has no property 'chanel' (it has: "
                                               "channel, port)")
    find(found, f"{LINK_OP}.inputs.port", "relationship template 'link' has no property 'prot'")
    find(found, f"{LINK_OP}.inputs.session", "relationship template 'link' has no attribute 'sesion'")
    find(found, "topology_template.outputs.session.value", "relationship template 'link' has no attribute 'x'")


def test_mappings_onto_what_is_not_there_are_refused(tmp_path):
    found = problems(tmp_path, TOPOLOGY.replace("made: [ SELF, token ]", "made: [ SELF, tokn ]")
                     .replace("for_client: [ client, note ]", "for_client: [ cleint, note ]")
                     .replace("mapping: [ link, session ]", "mapping: [ link, sesion ]")
                     .replace("greeting: [ TARGET, note ]", "greeting: [ TARGET, nothing ]")
                     .replace("session_id: [ SELF, session ]", "session_id: [ SELF, token ]")
                     .replace("opened: [ SELF, since ]", "opened: [ HOST, since ]"))
    find(found, f"{SERVER_OP}.outputs.made", "maps onto attribute 'tokn', which node 'server' does not declare "
                                             "(it has: note, state, token, tosca_id, tosca_name)")
    find(found, f"{SERVER_OP}.outputs.for_client", "maps onto unknown entity 'cleint'")
    find(found, f"{SERVER_OP}.outputs.for_link", "maps onto attribute 'sesion', which relationship template "
                                                 "'link' does not declare")
    find(found, f"{LINK_OP}.outputs.greeting", "maps onto attribute 'nothing', which node 'server' does not declare")
    # SELF in a relationship's operation is the relationship, not its source
    find(found, f"{LINK_OP}.outputs.session_id", "maps onto attribute 'token', which relationship template 'link' "
                                                 "does not declare")
    find(found, "node_templates.client.requirements[1].relationship.interfaces.Configure.post_configure_source"
                ".outputs.opened", "maps onto unknown entity 'HOST'")


def test_mappings_orch_cannot_honour_are_refused(tmp_path):
    found = problems(tmp_path, TOPOLOGY.replace("made: [ SELF, token ]", "made: [ SOURCE, token ]")
                     .replace("for_client: [ client, note ]", "for_client: [ client, caps, note ]")
                     .replace("mapping: [ link, session ]", "mapping: link"))
    find(found, f"{SERVER_OP}.outputs.made", "maps onto SOURCE, which only means something in a relationship's "
                                             "operations")
    find(found, f"{SERVER_OP}.outputs.for_client", "not onto a capability's attribute or into an attribute's value")
    find(found, f"{SERVER_OP}.outputs.for_link", "an attribute mapping is [entity, attribute]")


def test_a_template_of_several_requirements_or_of_none_names_no_one_relationship(tmp_path):
    several = TOPOLOGY.replace("""                  properties: { channel: tls }
                  interfaces:
                    Configure:
                      post_configure_source:
                        implementation: noop.yaml
                        outputs: { opened: [ SELF, since ] }
""", "").replace("""                relationship:
                  type: t.Link
""", "                relationship: link\n")
    found = problems(tmp_path, several)
    uses = "(client.requirements[0], client.requirements[1])"
    find(found, f"{CLIENT_OP}.inputs.session", f"relationship template 'link' is the relationship of several "
                                               f"requirements {uses}")
    find(found, f"{SERVER_OP}.outputs.for_link", f"which is the relationship of several requirements {uses}")
    # what is the same for every use is still readable
    assert not [p for p in found if p.place == f"{CLIENT_OP}.inputs.port"]

    unused = TOPOLOGY.replace("- dependency: { node: server, relationship: link }", "- dependency: server") \
        .replace("session: { get_attribute: [ link, session ] }", "session: none")
    find(problems(tmp_path, unused), f"{SERVER_OP}.outputs.for_link", "which is the relationship of no requirement")


def test_a_relationship_template_s_own_values_are_checked(tmp_path):
    found = problems(tmp_path, TOPOLOGY.replace("properties: { port: { get_input: port } }",
                                                "properties: { port: { get_input: prt } }"))
    find(found, "relationship_templates.link.properties.port", "undeclared input 'prt'")
