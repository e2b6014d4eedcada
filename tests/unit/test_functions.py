"""TOSCA intrinsic functions evaluated late through `evaluate(value, Context(...))`, against a topology
loaded from tests/unit/data/functions.yaml and fake store readers (plain dicts)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.evaluate import Context, evaluate
from orchestrator.functions import FunctionError, compute_host, host_chain
from orchestrator.tosca import load

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def topology():
    return load(DATA / "functions.yaml")


def context(topology, node: str | None = "app", *, attributes: dict | None = None,
            outputs: dict | None = None, inputs: dict | None = None, source: str | None = None,
            target: str | None = None, secrets: dict | None = None) -> Context:
    """attributes: {(node, name): value}; outputs: {(node, "Interface.op", output): value}."""
    attributes = attributes or {}
    outputs = outputs or {}
    reader = (lambda name, key: secrets[(name, key)]) if secrets is not None else None
    return Context(topology, node, dict(topology.input_values) if inputs is None else inputs,
                   read_attribute=lambda n, a: attributes.get((n, a)),
                   read_operation_output=lambda n, op, o: outputs.get((n, op, o)),
                   read_secret=reader, source=source, target=target)


def ev(topology, value: Any, node: str | None = "app", **kwargs) -> Any:
    return evaluate(value, context(topology, node, **kwargs))


# -- structure ----------------------------------------------------------------------------------------


def test_host_chain(topology):
    assert host_chain(topology, "app") == ["app", "web", "machine"]
    assert compute_host(topology, "app") == "machine"
    assert compute_host(topology, "machine") == "machine"


def test_plain_values_pass_through(topology):
    value = {"a": [1, "two", {"three": None}], "b": True}
    assert ev(topology, value) == value
    assert ev(topology, {"not_a_function": 1}) == {"not_a_function": 1}
    # a one-key mapping is a call only when the key is a function name
    assert ev(topology, {"get_input": "root", "extra": 1}) == {"get_input": "root", "extra": 1}


# -- get_input ----------------------------------------------------------------------------------------


def test_get_input(topology):
    assert ev(topology, {"get_input": "root"}) == "/srv"
    assert ev(topology, {"get_input": ["root"]}) == "/srv"
    assert ev(topology, {"get_input": ["levels", 2]}) == "high"
    assert ev(topology, {"get_input": "root"}, inputs={"root": "/scratch"}) == "/scratch"


def test_get_input_without_value(topology):
    with pytest.raises(FunctionError, match="input 'nope' has no value"):
        ev(topology, {"get_input": "nope"})
    with pytest.raises(FunctionError):
        ev(topology, {"get_input": ["levels", 7]})


# -- get_property -------------------------------------------------------------------------------------


def test_get_property_self(topology):
    assert ev(topology, {"get_property": ["SELF", "context_root"]}) == "/app"
    assert ev(topology, {"get_property": ["SELF", "port"]}) == 8080  # the type's default
    assert ev(topology, {"get_property": ["SELF", "path"]}) == "/srv/app"  # a function inside the property


def test_get_property_nested(topology):
    assert ev(topology, {"get_property": ["SELF", "tags", 2]}) == "c"
    assert ev(topology, {"get_property": ["SELF", "settings", "levels", 1]}) == 20
    assert ev(topology, {"get_property": ["SELF", "settings", "owner", "name"]}) == "alice"
    assert ev(topology, {"get_property": ["SELF", "settings", "levels"]}) == [10, 20, 30]


def test_get_property_host_walks_hosted_on(topology):
    assert ev(topology, {"get_property": ["HOST", "listen"]}) == 80  # web, one level down
    assert ev(topology, {"get_property": ["HOST", "site"]}) == "lyon"  # machine, two levels down
    assert ev(topology, {"get_property": ["HOST", "site"]}, node="web") == "lyon"
    with pytest.raises(FunctionError):  # web's host is machine, which has no 'listen'
        ev(topology, {"get_property": ["HOST", "listen"]}, node="web")
    with pytest.raises(FunctionError, match="not hosted"):
        ev(topology, {"get_property": ["HOST", "site"]}, node="machine")


def test_get_property_named_node(topology):
    assert ev(topology, {"get_property": ["machine", "site"]}) == "lyon"
    # db's own property is a function of an input, evaluated as db
    assert ev(topology, {"get_property": ["db", "db_name"]}) == "main-v1"
    assert ev(topology, {"get_property": ["db", "db_name"]}, node=None) == "main-v1"


def test_get_property_capability(topology):
    assert ev(topology, {"get_property": ["machine", "host", "num_cpus"]}) == 4
    assert ev(topology, {"get_property": ["SELF", "host", "mem_size"]}, node="machine") == "8 GB"
    assert ev(topology, {"get_property": ["HOST", "host", "num_cpus"]}) == 4


def test_get_property_through_a_requirement(topology):
    # [entity, requirement name, property]: the property of the requirement's target
    assert ev(topology, {"get_property": ["SELF", "host", "listen"]}) == 80
    assert ev(topology, {"get_property": ["SELF", "database", "db_name"]}) == "main-v1"


def test_get_property_capability_default(topology):
    assert ev(topology, {"get_property": ["db", "endpoint", "protocol"]}) == "tcp"


@pytest.mark.parametrize("call", [
    {"get_property": ["nobody", "site"]},
    {"get_property": ["SELF", "missing"]},
    {"get_property": ["SELF", "tags", 9]},
    {"get_property": ["SELF", "tags", "first"]},
    {"get_property": ["machine", "host", "no_such_capability_property"]},
    {"get_property": ["SOURCE", "port"]},  # no relationship here
], ids=["unknown-node", "unknown-property", "index-out-of-range", "key-into-list", "capability", "no-source"])
def test_get_property_bad_reference(topology, call):
    with pytest.raises(FunctionError):
        ev(topology, call)


def test_get_property_without_self(topology):
    with pytest.raises(FunctionError):
        ev(topology, {"get_property": ["SELF", "port"]}, node=None)
    with pytest.raises(FunctionError, match="HOST"):
        ev(topology, {"get_property": ["HOST", "site"]}, node=None)


# -- get_attribute ------------------------------------------------------------------------------------


def test_get_attribute_stored_value_wins(topology):
    stored = {("app", "status"): "running", ("machine", "public_address"): "198.51.100.7"}
    assert ev(topology, {"get_attribute": ["SELF", "status"]}, attributes=stored) == "running"
    assert ev(topology, {"get_attribute": ["machine", "public_address"]}, attributes=stored) == "198.51.100.7"
    # falsy stored values still win over the default
    assert ev(topology, {"get_attribute": ["SELF", "status"]}, attributes={("app", "status"): ""}) == ""
    assert ev(topology, {"get_attribute": ["SELF", "port"]}, attributes={("app", "port"): 0}) == 0


def test_get_attribute_template_default(topology):
    assert ev(topology, {"get_attribute": ["SELF", "status"]}) == "new"  # type default
    assert ev(topology, {"get_attribute": ["machine", "public_address"]}) == "192.0.2.10"  # template value


def test_get_attribute_falls_back_to_property(topology):
    assert ev(topology, {"get_attribute": ["SELF", "port"]}) == 8080
    assert ev(topology, {"get_attribute": ["SELF", "path"]}) == "/srv/app"
    assert ev(topology, {"get_attribute": ["SELF", "settings", "levels", 0]}) == 10


def test_get_attribute_unset_is_none(topology):
    assert ev(topology, {"get_attribute": ["SELF", "url"]}) is None
    assert ev(topology, {"get_attribute": ["db", "db_file"]}) is None


def test_get_attribute_host_and_nested(topology):
    assert ev(topology, {"get_attribute": ["HOST", "public_address"]}) == "192.0.2.10"
    stored = {("machine", "networks"): {"private": {"addresses": ["10.0.0.5", "10.0.0.6"]}}}
    assert ev(topology, {"get_attribute": ["HOST", "networks", "private", "addresses", 1]},
              attributes=stored) == "10.0.0.6"
    with pytest.raises(FunctionError):
        ev(topology, {"get_attribute": ["HOST", "networks", "public"]}, attributes=stored)


def test_get_attribute_unknown_node(topology):
    with pytest.raises(FunctionError):
        ev(topology, {"get_attribute": ["nobody", "status"]})


# -- get_operation_output -----------------------------------------------------------------------------


def test_get_operation_output(topology):
    outputs = {("db", "Standard.create", "db_file"): "/srv/db/main.sqlite",
               ("app", "Configure.pre_configure_source", "link"): "ok"}
    assert ev(topology, {"get_operation_output": ["db", "Standard", "create", "db_file"]},
              outputs=outputs) == "/srv/db/main.sqlite"
    assert ev(topology, {"get_operation_output": ["db", "tosca.interfaces.node.lifecycle.Standard", "create",
                                                  "db_file"]}, outputs=outputs) == "/srv/db/main.sqlite"
    assert ev(topology, {"get_operation_output": ["SELF", "tosca.interfaces.relationship.Configure",
                                                  "pre_configure_source", "link"]}, outputs=outputs) == "ok"
    assert ev(topology, {"get_operation_output": ["db", "Standard", "configure", "db_file"]},
              outputs=outputs) is None  # not run yet
    with pytest.raises(FunctionError):
        ev(topology, {"get_operation_output": ["nobody", "Standard", "create", "db_file"]}, outputs=outputs)


# -- concat, join, token ------------------------------------------------------------------------------


def test_concat(topology):
    assert ev(topology, {"concat": ["a", 1, "-", 2.5, True, False]}) == "a1-2.5truefalse"  # YAML spelling
    assert ev(topology, {"concat": ["x", {"get_attribute": ["SELF", "url"]}, "y"]}) == "xy"  # None → ""
    assert ev(topology, {"concat": []}) == ""


def test_join(topology):
    assert ev(topology, {"join": [["a", "b", "c"], ","]}) == "a,b,c"
    assert ev(topology, {"join": [["a", "b", "c"]]}) == "abc"
    assert ev(topology, {"join": [{"get_input": "levels"}, "|"]}) == "low|mid|high"
    assert ev(topology, {"join": [[{"get_input": "root"}, {"get_property": ["SELF", "context_root"]}], ""]}) \
        == "/srv/app"


def test_token(topology):
    assert ev(topology, {"token": ["a:b:c", ":", 1]}) == "b"
    assert ev(topology, {"token": ["a-b_c", "-_", 2]}) == "c"  # every character is a delimiter
    assert ev(topology, {"token": ["plain", ",", 0]}) == "plain"
    with pytest.raises(FunctionError, match="out of range"):
        ev(topology, {"token": ["a:b", ":", 5]})


# -- get_artifact, get_secret -------------------------------------------------------------------------


def test_get_artifact(topology):
    path = ev(topology, {"get_artifact": ["SELF", "config"]})
    assert Path(path) == (DATA / "files" / "app.conf").resolve()
    assert ev(topology, {"get_artifact": ["app", "config"]}, node=None) == path
    with pytest.raises(FunctionError, match="no artifact 'missing'"):
        ev(topology, {"get_artifact": ["SELF", "missing"]})


def test_get_secret(topology):
    secrets = {("db_password", None): "s3cret", ("vault", "token"): "t0k"}
    assert ev(topology, {"get_secret": "db_password"}, secrets=secrets) == "s3cret"
    assert ev(topology, {"get_secret": ["vault", "token"]}, secrets=secrets) == "t0k"
    with pytest.raises(FunctionError, match="no secret store"):
        ev(topology, {"get_secret": "db_password"})


# -- nesting ------------------------------------------------------------------------------------------


def test_nested_functions(topology):
    stored = {("app", "status"): "up"}
    url = {"concat": ["http://", {"get_attribute": ["HOST", "public_address"]}, ":",
                      {"get_property": ["SELF", "port"]}, {"get_property": ["SELF", "context_root"]},
                      {"get_input": "suffix"}]}
    assert ev(topology, url) == "http://192.0.2.10:8080/app-v1"
    assert ev(topology, {"token": [url, ":", 2]}) == "8080/app-v1"
    assert ev(topology, {"concat": [{"get_attribute": ["SELF", "status"]}, "@",
                                    {"token": [{"get_property": ["SELF", "path"]}, "/", 1]}]},
              attributes=stored) == "up@srv"
    assert ev(topology, {"join": [[{"concat": [{"get_input": "root"}, "/a"]}, {"get_input": ["levels", 0]}],
                                  {"concat": [",", " "]}]}) == "/srv/a, low"
    # functions inside plain data, as operation inputs are written
    inputs = {"env": {"URL": url, "LEVELS": [{"get_input": ["levels", 1]}, "x"]}, "count": 3}
    assert ev(topology, inputs) == {"env": {"URL": "http://192.0.2.10:8080/app-v1", "LEVELS": ["mid", "x"]},
                                    "count": 3}


def test_evaluate_does_not_modify_the_topology(topology):
    before = copy.deepcopy(dict(topology.nodes["app"].properties))
    ev(topology, {"get_property": ["SELF", "path"]})
    ev(topology, {"get_attribute": ["SELF", "settings", "levels", 0]})
    assert dict(topology.nodes["app"].properties) == before


# -- relationship context -----------------------------------------------------------------------------


def test_source_and_target(topology):
    stored = {("db", "db_file"): "/srv/db/main.sqlite", ("app", "status"): "configuring"}
    kwargs = {"source": "app", "target": "db", "attributes": stored}
    assert ev(topology, {"get_property": ["TARGET", "db_name"]}, **kwargs) == "main-v1"
    assert ev(topology, {"get_property": ["SOURCE", "port"]}, **kwargs) == 8080
    assert ev(topology, {"get_attribute": ["TARGET", "db_file"]}, **kwargs) == "/srv/db/main.sqlite"
    assert ev(topology, {"get_attribute": ["SOURCE", "status"]}, **kwargs) == "configuring"
    assert ev(topology, {"concat": [{"get_property": ["SOURCE", "path"]}, "->",
                                    {"get_attribute": ["TARGET", "db_file"]}]}, **kwargs) \
        == "/srv/app->/srv/db/main.sqlite"
    # HOST is SELF's host, whatever the relationship
    assert ev(topology, {"get_property": ["HOST", "site"]}, **kwargs) == "lyon"


def test_target_outside_a_relationship(topology):
    with pytest.raises(FunctionError, match="TARGET"):
        ev(topology, {"get_property": ["TARGET", "db_name"]})
    with pytest.raises(FunctionError):
        ev(topology, {"get_attribute": ["SOURCE", "status"]}, target="db")
