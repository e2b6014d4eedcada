"""TOSCA as other people write it (issue 15): each form orch accepts, through `check` and `load`, with one
template that passes (and what the model then holds) and, where the form has rules, one that breaks them
and the problem named. Templates are written into tmp_path by the tests themselves."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.model import LoadError, Problem, Topology
from orchestrator.tosca.loader import check, load

HEADER = "tosca_definitions_version: tosca_simple_yaml_1_3\n"


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(text), encoding="utf-8")
    return path


def loads(tmp_path: Path, text: str, inputs=None) -> Topology:
    return load(write(tmp_path, text), inputs)


def problems(tmp_path: Path, text: str, inputs=None, *, via=load) -> list[Problem]:
    with pytest.raises(LoadError) as caught:
        via(write(tmp_path, text), inputs)
    assert caught.value.problems
    return caught.value.problems


def find(found: list[Problem], place: str | None, message: str) -> Problem:
    for problem in found:
        if (place is None or problem.place == place) and message in problem.message:
            return problem
    raise AssertionError(f"no problem at {place!r} containing {message!r} in:\n" + "\n".join(map(str, found)))


# -- tosca-parser's gaps, closed in front of it ----------------------------------------------------


def test_normative_capability_types_of_tosca_1_3_are_known(tmp_path):
    topology = loads(tmp_path, """
        node_types:
          my.Server:
            derived_from: tosca.nodes.Root
            capabilities:
              compute: tosca.capabilities.Compute
              storage: { type: tosca.capabilities.Storage }
              network: { type: tosca.capabilities.Network }
          my.App:
            derived_from: tosca.nodes.Root
            requirements:
              - host:
                  capability: tosca.capabilities.Compute
                  relationship: tosca.relationships.HostedOn
        topology_template:
          node_templates:
            server:
              type: my.Server
              capabilities:
                compute: { properties: { num_cpus: 4, name: big } }
                storage: { properties: { name: scratch } }
            vm:
              type: tosca.nodes.Compute
            app:
              type: my.App
              requirements:
                - host: server
            app_on_vm:
              type: my.App
              requirements:
                - host: vm
        """)
    assert topology.nodes["server"].capabilities["compute"] == {"num_cpus": 4, "name": "big"}
    assert topology.nodes["app"].requirements[0].target == "server"
    # TOSCA 1.3's Compute node hosts on a tosca.capabilities.Compute
    assert topology.nodes["app_on_vm"].requirements[0].target == "vm"


def test_a_capability_property_of_a_1_3_capability_type_is_checked(tmp_path):
    found = problems(tmp_path, """
        node_types:
          my.Server:
            derived_from: tosca.nodes.Root
            capabilities:
              compute: tosca.capabilities.Compute
        topology_template:
          node_templates:
            server:
              type: my.Server
              capabilities:
                compute: { properties: { num_cpus: 0 } }
        """)
    find(found, None, "num_cpus")


def test_a_requirement_definition_without_node_does_not_crash_the_parser(tmp_path):
    # tosca-parser crashed here: 'NoneType' object has no attribute 'startswith'
    topology = loads(tmp_path, """
        node_types:
          my.App:
            derived_from: tosca.nodes.Root
            requirements:
              - needs:
                  capability: tosca.capabilities.Node
                  relationship: tosca.relationships.DependsOn
        topology_template:
          node_templates:
            other: { type: tosca.nodes.Root }
            app:
              type: my.App
              requirements:
                - needs: other
        """)
    requirement = topology.nodes["app"].requirements[0]
    assert (requirement.name, requirement.target, requirement.relationship_type) == \
        ("needs", "other", "tosca.relationships.DependsOn")


def test_a_topology_output_may_have_a_type(tmp_path):
    topology = loads(tmp_path, """
        topology_template:
          node_templates:
            other: { type: tosca.nodes.Root }
          outputs:
            state:
              type: string
              description: the state
              value: { get_attribute: [other, state] }
        """)
    assert topology.outputs == {"state": {"get_attribute": ["other", "state"]}}


def test_an_output_type_is_checked(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          node_templates:
            other: { type: tosca.nodes.Root }
          outputs:
            odd: { type: no.such.Type, value: { get_attribute: [other, state] } }
            count: { type: integer, value: many }
            misspelt: { value: 1, descripton: one }
        """)
    find(found, "topology_template.outputs.odd.type", "unknown type 'no.such.Type'")
    find(found, "topology_template.outputs.count.value", "is not an integer")
    find(found, "topology_template.outputs.misspelt", "unknown key descripton")


def test_token_takes_several_separator_characters(tmp_path):
    topology = loads(tmp_path, """
        topology_template:
          inputs:
            address: { type: string, default: "host:22/tcp" }
          node_templates:
            other: { type: tosca.nodes.Root }
          outputs:
            port: { value: { token: [ { get_input: address }, ":/", 1 ] } }
        """)
    assert topology.outputs["port"] == {"token": [{"get_input": "address"}, ":/", 1]}


@pytest.mark.parametrize("arguments", ['[ "a.b", "", 1 ]', '[ "a.b", 7, 1 ]', '[ "a.b", ".", first ]',
                                       '[ "a.b", "." ]'])
def test_token_arguments_are_checked_by_orch(tmp_path, arguments):
    found = problems(tmp_path, f"""
        topology_template:
          node_templates:
            other: {{ type: tosca.nodes.Root }}
          outputs:
            part: {{ value: {{ token: {arguments} }} }}
        """)
    find(found, "topology_template.outputs.part.value", "token takes [string, delimiters, index]")


TRIGGER = """
    topology_template:
      node_templates:
        other: { type: tosca.nodes.Root }
      policies:
        - scale:
            type: tosca.policies.Scaling
            targets: [other]
            triggers:
              high_load:
                event: load_high
                condition:
                  constraint:
                    - greater_than: 80
                  period: %s
                  evaluations: %s
                  method: %s
                action:
                  - call_operation: Standard.start
    """


def test_a_policy_trigger_condition_may_have_period_and_method(tmp_path):
    topology = loads(tmp_path, TRIGGER % ("60 s", 2, "average"))
    assert topology.policies["scale"]["triggers"]["high_load"]["condition"]["method"] == "average"


def test_a_policy_trigger_condition_is_checked(tmp_path):
    found = problems(tmp_path, TRIGGER % ("soon", 0, "[1]"))
    where = "topology_template.policies[0].scale.triggers.high_load.condition"
    find(found, f"{where}.period", "must be a time")
    find(found, f"{where}.evaluations", "whole number")
    find(found, f"{where}.method", "must be a string")


def test_an_input_of_a_data_type_is_accepted_and_checked(tmp_path):
    # tosca-parser refused any input of a data type but PortDef/PortSpec ('Invalid type "<class 'type'>"')
    text = """
        data_types:
          my.Place:
            derived_from: tosca.datatypes.Root
            properties:
              path: { type: string }
        topology_template:
          inputs:
            credential: { type: tosca.datatypes.Credential, required: false }
            place: { type: my.Place, default: { path: /tmp } }
            port: { type: tosca.datatypes.network.PortDef, default: 8080 }
          node_templates:
            other: { type: tosca.nodes.Root }
        """
    topology = loads(tmp_path, text, {"port": "2222"})
    assert topology.input_values["port"] == 2222  # a PortDef is an integer
    assert topology.input_values["place"] == {"path": "/tmp"}
    find(problems(tmp_path, text, {"port": "70000"}), "topology_template.inputs.port", "in_range")


# -- short and qualified names of the normative types -------------------------------------------------------


def test_short_and_qualified_names_of_normative_types(tmp_path):
    (tmp_path / "run.sh").write_text("#!/bin/sh\n", encoding="utf-8")
    topology = loads(tmp_path, """
        data_types:
          my.Ports:
            derived_from: Root
            properties:
              main: { type: PortDef }
              spec: { type: PortSpec, required: false }
              info: { type: tosca:NetworkInfo, required: false }
              when: { type: TimeInterval, required: false }
              extra: { type: list, entry_schema: PortInfo, required: false }
        node_types:
          my.App:
            derived_from: SoftwareComponent
            properties:
              ports: { type: my.Ports }
              credential: { type: Credential, required: false }
            capabilities:
              api: Endpoint.Public
              link: { type: Linkable }
            requirements:
              - store:
                  capability: Attachment
                  node: BlockStorage
                  relationship: AttachesTo
                  occurrences: [0, 1]
            artifacts:
              script: { type: Bash, file: run.sh }
        topology_template:
          inputs:
            port: { type: PortDef, default: 8080 }
          node_templates:
            server: { type: tosca:Compute }
            net: { type: Network }
            app:
              type: my.App
              properties:
                ports: { main: { get_input: port } }
              requirements:
                - host: server
                - dependency: { node: net, relationship: tosca:DependsOn }
        """)
    app = topology.nodes["app"]
    assert app.types[:2] == ("my.App", "tosca.nodes.SoftwareComponent")
    assert topology.nodes["server"].type == "tosca.nodes.Compute"
    assert topology.nodes["net"].type == "tosca.nodes.network.Network"
    assert app.artifacts["script"].type == "tosca.artifacts.Implementation.Bash"
    assert [r.relationship_type for r in app.requirements] == ["tosca.relationships.HostedOn",
                                                               "tosca.relationships.DependsOn"]
    assert topology.inputs["port"].type == "integer"  # a PortDef: an integer from 1 to 65535
    find(problems(tmp_path, """
        topology_template:
          inputs:
            port: { type: PortDef, default: 0 }
          node_templates:
            server: { type: Compute }
        """), "topology_template.inputs.port", "in_range")


def test_a_short_name_that_names_no_type_is_reported_as_written(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          node_templates:
            server: { type: Computer }
        """)
    find(found, "node_templates.server.type", "unknown node type 'Computer'")


def test_a_template_type_of_the_users_own_wins_over_a_short_name(tmp_path):
    topology = loads(tmp_path, """
        node_types:
          Compute:
            derived_from: tosca.nodes.Root
        topology_template:
          node_templates:
            box: { type: Compute }
        """)
    assert topology.nodes["box"].types == ("Compute", "tosca.nodes.Root")


# -- what `orch validate` checks that deploy would not start -----------------------------------------------

LIBRARY = """
    node_types:
      my.App:
        derived_from: SoftwareComponent
        properties:
          port: { type: PortDef, default: 80 }
    capability_types:
      my.Api:
        derived_from: tosca.capabilities.Endpoint
    """


def test_a_type_library_validates_on_its_own(tmp_path):
    found = check(write(tmp_path, LIBRARY))
    assert (found.kind, found.nodes, found.workflows, found.needs_inputs) == ("types", 0, 0, ())


def test_a_type_library_is_checked(tmp_path):
    found = problems(tmp_path, """
        node_types:
          my.App:
            derived_from: my.Missing
          my.Other:
            derived_from: tosca.nodes.Root
            properties:
              size: { type: no.such.Type }
        """, via=check)
    find(found, "node_types.my.App.derived_from", "unknown parent type 'my.Missing'")
    find(found, None, "no.such.Type")


def test_a_type_library_is_nothing_to_deploy(tmp_path):
    found = problems(tmp_path, LIBRARY)  # load(): what deploy and plan call
    find(found, "topology_template", "only defines types (a type library")


def test_a_file_of_neither_types_nor_topology_is_refused_even_by_check(tmp_path):
    find(problems(tmp_path, "description: nothing\n", via=check), "topology_template", "defines no types either")


def test_a_topology_of_relationship_templates_alone_is_valid(tmp_path):
    path = write(tmp_path, """
        relationship_types:
          my.Link:
            derived_from: tosca.relationships.Root
            properties:
              settings: { type: map, key_schema: { type: string }, entry_schema: { type: string } }
        topology_template:
          relationship_templates:
            link:
              type: my.Link
              properties:
                settings: { mode: fast }
        """)
    found = check(path)
    assert (found.kind, found.nodes) == ("topology", 0)
    assert load(path).nodes == {}


def test_a_relationship_template_of_an_unknown_type_is_refused(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          relationship_templates:
            link: { type: my.NoSuchLink }
        """, via=check)
    find(found, None, "my.NoSuchLink")


def test_an_empty_topology_is_still_refused(tmp_path):
    found = problems(tmp_path, "topology_template:\n  description: nothing\n", via=check)
    find(found, "topology_template.node_templates", "needs at least one node template")


NEEDS_INPUTS = """
    topology_template:
      inputs:
        user: { type: string }
        cpus: { type: integer, constraints: [ { valid_values: [1, 2, 4] } ] }
        mode: { type: string, default: fast }
        note: { type: string, required: false }
      node_templates:
        server:
          type: tosca.nodes.Compute
          capabilities:
            host: { properties: { num_cpus: { get_input: cpus } } }
          attributes:
            owner: { get_input: user }
    """


def test_check_lists_required_inputs_without_values(tmp_path):
    path = write(tmp_path, NEEDS_INPUTS)
    assert check(path).needs_inputs == ("user", "cpus")
    assert check(path, {"cpus": 2}).needs_inputs == ("user",)
    assert check(path, {"cpus": 2, "user": "ann"}).needs_inputs == ()


def test_check_still_checks_the_values_it_is_given(tmp_path):
    found = problems(tmp_path, NEEDS_INPUTS, {"cpus": 3}, via=check)
    find(found, "topology_template.inputs.cpus", "violates constraint valid_values")


def test_deploy_and_plan_refuse_required_inputs_without_values(tmp_path):
    found = problems(tmp_path, NEEDS_INPUTS, {"cpus": 2})
    find(found, "topology_template.inputs.user", "required input has no value")
    assert [p.place for p in found] == ["topology_template.inputs.user"]
    assert loads(tmp_path, NEEDS_INPUTS, {"cpus": 2, "user": "ann"}).input_values == \
        {"user": "ann", "cpus": 2, "mode": "fast"}


# -- cycles ------------------------------------------------------------------------------------------------

CYCLE = """
    relationship_types:
      my.Peer:
        derived_from: %s
    node_types:
      my.Server:
        derived_from: tosca.nodes.Compute
        capabilities:
          peer: tosca.capabilities.Node
        requirements:
          - peer:
              capability: tosca.capabilities.Node
              relationship: my.Peer
              occurrences: [0, 1]
    topology_template:
      node_templates:
        one:
          type: my.Server
          requirements:
            - peer: two
        two:
          type: my.Server
          requirements:
            - peer: one
    """


def test_a_cycle_over_a_relationship_that_orders_nothing_is_valid(tmp_path):
    path = write(tmp_path, CYCLE % "tosca.relationships.Root")
    assert check(path).nodes == 2


def test_deploy_loads_a_cycle_of_unordered_relationships(tmp_path):
    # the plan does not order the ends of a relationship derived from Root alone (its operations run once
    # both ends are started): deploy and plan load it (tests/integration/test_unordered_relationships.py
    # deploys one)
    topology = loads(tmp_path, CYCLE % "tosca.relationships.Root")
    assert [r.orders for r in topology.nodes["one"].requirements] == [False]


@pytest.mark.parametrize("parent", ["tosca.relationships.DependsOn", "tosca.relationships.HostedOn",
                                    "tosca.relationships.ConnectsTo"])
def test_a_cycle_over_ordering_relationships_is_an_error(tmp_path, parent):
    found = problems(tmp_path, CYCLE % parent, via=check)
    find(found, "node_templates.one.requirements", "requirement cycle: one -> two -> one")


def test_each_requirement_says_whether_it_orders_its_ends(tmp_path):
    topology = loads(tmp_path, """
        relationship_types:
          my.Peer: { derived_from: tosca.relationships.Root }
          my.Uses: { derived_from: tosca.relationships.ConnectsTo }
        topology_template:
          node_templates:
            db: { type: tosca.nodes.Root }
            app:
              type: tosca.nodes.Root
              requirements:
                - dependency: { node: db, relationship: my.Peer }
                - dependency: { node: db, relationship: my.Uses }
                - dependency: db
        """)
    assert [r.orders for r in topology.nodes["app"].requirements] == [False, True, True]


def test_the_storage_node_types_of_tosca_1_3_are_not_refused(tmp_path):
    # tosca-parser refused them as "valid TOSCA type but not supported at this time"
    topology = loads(tmp_path, """
        topology_template:
          node_templates:
            volume:
              type: tosca.nodes.Storage.BlockStorage
              properties: { name: data, size: 10 GB }
            bucket:
              type: tosca.nodes.Storage.ObjectStorage
              properties: { name: results }
            server:
              type: tosca.nodes.Compute
              requirements:
                - local_storage: volume
        """)
    assert topology.nodes["server"].requirements[0].relationship_type == "tosca.relationships.AttachesTo"
    assert topology.nodes["volume"].is_a("tosca.nodes.Abstract.Storage")


# -- requirements fulfilled by matching --------------------------------------------------------------------

SERVERS = """
    topology_template:
      inputs:
        big_cpus: { type: integer, default: 16 }
      node_templates:
        small:
          type: tosca.nodes.Compute
          capabilities:
            host: { properties: { num_cpus: 2, mem_size: 4 GB } }
        big:
          type: tosca.nodes.Compute
          capabilities:
            host: { properties: { num_cpus: { get_input: big_cpus }, mem_size: 64 GB } }
        db:
          type: tosca.nodes.DBMS
          requirements:
            - host: small
        app:
          type: tosca.nodes.SoftwareComponent
          requirements:
            - host: %s
    """


@pytest.mark.parametrize(("requirement", "target"), [
    ("{ node_filter: { capabilities: [ { host: { properties: [ { num_cpus: { greater_or_equal: 8 } } ] } } ] } }",
     "big"),
    ("{ node_filter: { capabilities: [ { tosca.capabilities.Compute: { properties: "
     "[ { mem_size: { less_than: 8 GB } } ] } } ] } }", "small"),
    ("{ node: tosca.nodes.DBMS }", "db"),
    ("{ node: DBMS, capability: tosca.capabilities.Container }", "db"),
    ("{ node: tosca.nodes.Compute, node_filter: { capabilities: [ { host: { properties: "
     "[ { num_cpus: [ { in_range: [ 1, 4 ] } ] } ] } } ] } }", "small"),
])
def test_a_requirement_is_fulfilled_by_the_one_template_that_matches(tmp_path, requirement, target):
    topology = loads(tmp_path, SERVERS % requirement)
    assert topology.nodes["app"].requirements[0].target == target
    assert topology.nodes["app"].requirements[0].relationship_type == "tosca.relationships.HostedOn"


def test_a_node_filter_reads_the_inputs_given(tmp_path):
    wanted = ("{ node_filter: { capabilities: [ { host: { properties: "
              "[ { num_cpus: { greater_or_equal: 8 } } ] } } ] } }")
    assert loads(tmp_path, SERVERS % wanted, {"big_cpus": 32}).nodes["app"].requirements[0].target == "big"
    found = problems(tmp_path, SERVERS % wanted, {"big_cpus": 4})
    find(found, "node_templates.app.requirements[0]", "none of the topology's is a node")


def test_a_requirement_that_several_templates_match_names_them(tmp_path):
    found = problems(tmp_path, SERVERS % "{ node: tosca.nodes.Compute }", via=check)
    problem = find(found, "node_templates.app.requirements[0]", "several are a node of type tosca.nodes.Compute")
    assert "big, small" in problem.message or "small, big" in problem.message


def test_a_requirement_that_no_template_matches_says_what_it_asked(tmp_path):
    found = problems(tmp_path, SERVERS % "{ node: tosca.nodes.WebServer }", via=check)
    find(found, "node_templates.app.requirements[0]",
         "names no node template, and none of the topology's is a node of type tosca.nodes.WebServer")


def test_a_named_target_must_match_the_node_filter(tmp_path):
    found = problems(tmp_path, SERVERS % "{ node: small, node_filter: { capabilities: [ { host: { properties: "
                                         "[ { num_cpus: { greater_or_equal: 8 } } ] } } ] } }", via=check)
    find(found, "node_templates.app.requirements[0].node_filter", "targets node 'small', which does not match")


def test_matching_never_picks_the_node_itself(tmp_path):
    topology = loads(tmp_path, """
        topology_template:
          node_templates:
            one: { type: tosca.nodes.Root }
            two:
              type: tosca.nodes.Root
              requirements:
                - dependency: { node: tosca.nodes.Root }
        """)
    assert topology.nodes["two"].requirements[0].target == "one"


def test_requirement_occurrences_are_checked(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          node_templates:
            one: { type: tosca.nodes.Compute }
            two: { type: tosca.nodes.Compute }
            app:
              type: tosca.nodes.SoftwareComponent
              requirements:
                - host: one
                - host: two
            lonely: { type: tosca.nodes.SoftwareComponent }
        """, via=check)
    find(found, "node_templates.app.requirements", "requirement 'host' is assigned 2 times; its occurrences are [1, 1]")
    find(found, "node_templates.lonely.requirements", "requirement 'host' is assigned 0 times")


# -- implementations -----------------------------------------------------------------------------------------

PLAYBOOK = "- hosts: all\n  gather_facts: false\n  tasks: []\n"


def playbooks(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(PLAYBOOK, encoding="utf-8")


def test_an_implementation_may_name_one_of_the_nodes_artifacts(tmp_path):
    playbooks(tmp_path, "ansible/install.yaml", "ansible/configure.yaml", "ansible/start.yaml")
    topology = loads(tmp_path, """
        node_types:
          my.App:
            derived_from: tosca.nodes.Root
            artifacts:
              installer: { type: tosca.artifacts.Implementation, file: ansible/install.yaml }
            interfaces:
              Standard:
                create: installer
        topology_template:
          node_templates:
            app:
              type: my.App
              artifacts:
                configurer: { type: tosca.artifacts.Implementation, file: ansible/configure.yaml }
              interfaces:
                Standard:
                  configure:
                    implementation: configurer
                  start:
                    implementation: { primary: ansible/start.yaml }
        """)
    operations = topology.nodes["app"].operations
    assert operations["Standard.create"].implementation == str(tmp_path / "ansible/install.yaml")
    assert operations["Standard.configure"].implementation == str(tmp_path / "ansible/configure.yaml")
    assert operations["Standard.start"].implementation == str(tmp_path / "ansible/start.yaml")


def test_primary_and_dependencies_may_be_artifact_names_or_definitions(tmp_path):
    playbooks(tmp_path, "run.yaml", "lib/helpers.yaml", "lib/vars.yaml")
    topology = loads(tmp_path, """
        topology_template:
          node_templates:
            app:
              type: tosca.nodes.Root
              artifacts:
                runner: { type: tosca.artifacts.Implementation, file: run.yaml }
                helpers: { type: tosca.artifacts.File, file: lib/helpers.yaml }
              interfaces:
                Standard:
                  create:
                    implementation:
                      primary: runner
                      dependencies:
                        - helpers
                        - { file: lib/vars.yaml, type: tosca.artifacts.File }
                  configure:
                    implementation:
                      primary: { file: run.yaml, type: tosca.artifacts.Implementation }
                      timeout: 30
        """)
    create = topology.nodes["app"].operations["Standard.create"]
    assert create.implementation == str(tmp_path / "run.yaml")
    assert create.dependencies == (str(tmp_path / "lib/helpers.yaml"), str(tmp_path / "lib/vars.yaml"))
    assert topology.nodes["app"].operations["Standard.configure"].timeout == 30


def test_implementation_problems_are_named(tmp_path):
    playbooks(tmp_path, "run.yaml")
    found = problems(tmp_path, """
        repositories:
          code: { url: "https://code.example.invalid/" }
        topology_template:
          node_templates:
            app:
              type: tosca.nodes.Root
              artifacts:
                remote: { type: tosca.artifacts.Implementation, file: deploy/run.yaml, repository: code }
                odd: { type: shell, file: run.yaml }
              interfaces:
                Standard:
                  create: remote
                  configure:
                    implementation: { primary: run.yaml, dependencies: [ missing.yaml ] }
                  start:
                    implementation: { primary: run.yaml, dependencies: run.yaml }
        """, via=check)
    find(found, "node_templates.app.interfaces.Standard.create",
         "implementation artifact 'remote' ('deploy/run.yaml') is a file of repository 'code'")
    find(found, "node_templates.app.artifacts.odd.type", "unknown artifact type 'shell'")
    find(found, "node_templates.app.interfaces.Standard.configure", "dependency 'missing.yaml' does not exist")
    find(found, "node_templates.app.interfaces.Standard.start.implementation.dependencies", "must be a list")


def test_an_artifact_of_a_repository_is_not_looked_for_here(tmp_path):
    topology = loads(tmp_path, """
        repositories:
          images: { url: "https://images.example.invalid/" }
        topology_template:
          node_templates:
            app:
              type: tosca.nodes.Root
              artifacts:
                image: { type: tosca.artifacts.Deployment.Image, file: base/app.qcow2, repository: images }
        """)
    artifact = topology.nodes["app"].artifacts["image"]
    assert (artifact.file, artifact.repository) == ("base/app.qcow2", "images")


def test_in_a_csar_a_path_beginning_with_slash_is_from_the_archive_root(tmp_path):
    import zipfile

    archive = tmp_path / "app.csar"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("TOSCA-Metadata/TOSCA.meta", "TOSCA-Meta-File-Version: 1.0\nCSAR-Version: 1.1\n"
                   "Created-By: test\nEntry-Definitions: Definitions/app.yaml\n")
        z.writestr("Definitions/types.yaml", HEADER + textwrap.dedent("""
            node_types:
              my.App:
                derived_from: tosca.nodes.Root
                interfaces:
                  Standard:
                    create: /playbooks/create.yaml
            """))
        z.writestr("Definitions/app.yaml", HEADER + textwrap.dedent("""
            imports:
              - /Definitions/types.yaml
            topology_template:
              node_templates:
                app:
                  type: my.App
                  artifacts:
                    data: { type: tosca.artifacts.File, file: /files/data.txt }
                  interfaces:
                    Standard:
                      configure: /playbooks/configure.yaml
            """))
        z.writestr("playbooks/create.yaml", PLAYBOOK)
        z.writestr("playbooks/configure.yaml", PLAYBOOK)
        z.writestr("files/data.txt", "data\n")
    kept = tmp_path / "kept"
    topology = load(archive, unpack_dir=kept)
    app = topology.nodes["app"]
    assert app.operations["Standard.create"].implementation == str((kept / "playbooks/create.yaml").resolve())
    assert app.operations["Standard.configure"].implementation == str((kept / "playbooks/configure.yaml").resolve())
    assert app.artifacts["data"].file == str((kept / "files/data.txt").resolve())


# -- what orch refuses, and says why ------------------------------------------------------------------------


def _root_template_csar(path: Path, version: str) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("service.yaml", f"tosca_definitions_version: {version}\n"
                   "topology_template:\n  node_templates:\n    server: { type: tosca.nodes.Compute }\n")
    return path


def test_a_tosca_1_0_csar_needs_its_metadata_file(tmp_path):
    with pytest.raises(LoadError) as caught:
        check(_root_template_csar(tmp_path / "old.csar", "tosca_simple_yaml_1_0"))
    find(caught.value.problems, "TOSCA-Metadata/TOSCA.meta", "is missing, which a TOSCA 1.0 CSAR needs")
    # from TOSCA 1.1 on, a single root template is enough
    assert check(_root_template_csar(tmp_path / "new.csar", "tosca_simple_yaml_1_3")).nodes == 1


def test_the_nfv_profile_is_refused_in_one_message(tmp_path):
    path = tmp_path / "vnf.yaml"
    path.write_text("tosca_definitions_version: tosca_simple_profile_for_nfv_1_0_0\n"
                    "topology_template:\n  node_templates:\n    vdu: { type: tosca.nodes.nfv.VDU }\n"
                    "    cp: { type: tosca.nodes.nfv.CP }\n", encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        check(path)
    assert len(caught.value.problems) == 1
    find(caught.value.problems, "tosca_definitions_version", "the TOSCA NFV profile, which is outside orch's scope")


def test_an_nfv_type_in_a_simple_profile_template_says_what_it_is(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          node_templates:
            vdu: { type: tosca.nodes.nfv.Vdu.Compute }
        """, via=check)
    find(found, "node_templates.vdu.type", "a type of the TOSCA NFV profile, which is outside orch's scope")


def test_a_duplicate_mapping_key_is_refused(tmp_path):
    found = problems(tmp_path, """
        topology_template:
          node_templates:
            server: { type: tosca.nodes.Compute }
            server: { type: tosca.nodes.Root }
        """, via=check)
    find(found, None, "duplicate key 'server'")


def test_an_input_of_a_complex_data_type_is_checked_against_its_properties(tmp_path):
    text = """
        data_types:
          my.Place:
            derived_from: tosca.datatypes.Root
            properties:
              path: { type: string }
              port: { type: PortDef, required: false }
              tags: { type: list, entry_schema: { type: integer }, required: false }
              login: { type: tosca.datatypes.Credential, required: false }
        topology_template:
          inputs:
            place: { type: my.Place }
          node_templates:
            other: { type: tosca.nodes.Root }
        """
    good = {"path": "/data", "port": 22, "tags": [1, 2], "login": {"user": "ann", "token": "s3cret"}}
    assert loads(tmp_path, text, {"place": good}).input_values["place"] == good
    found = problems(tmp_path, text, {"place": {"port": 70000, "colour": "red", "tags": ["x"],
                                                "login": {"user": "ann"}}})
    where = "topology_template.inputs.place"
    find(found, f"{where}.colour", "my.Place has no property 'colour'")
    find(found, f"{where}.path", "the required property 'path' of my.Place is missing")
    find(found, f"{where}.port", "in_range")
    find(found, f"{where}.tags[0]", "expected a integer")
    find(found, f"{where}.login.token", "the required property 'token' of tosca.datatypes.Credential is missing")
    assert not any("s3cret" in p.message or "70000" in p.message for p in found)
