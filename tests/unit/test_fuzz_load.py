"""Fuzzing `load` with mutations of topologies/hello.yaml: whatever the document becomes, load returns a
Topology or raises LoadError - never any other exception, and never hangs.

Mutations: drop a key or item, replace a value by random scalars/lists/mappings (keys of any type,
function calls included), rename types (node types, derived_from, relationships) and node templates.
Half of the examples start from hello.yaml with its type file inlined, so that the type definitions
are mutated too. Derandomized for a stable suite; ORCH_FUZZ_RANDOM=1 explores new examples and
ORCH_FUZZ_EXAMPLES=N runs N of them (150 by default).
"""

from __future__ import annotations

import copy
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from orchestrator.model import LoadError, Problem, Topology
from orchestrator.tosca import load

REPO = Path(__file__).resolve().parents[2]
# Hypothesis caches (unicode tables, constants) go to the temporary folder, not to .hypothesis/ here.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "orch-unit-hypothesis"))
HELLO = yaml.safe_load((REPO / "topologies" / "hello.yaml").read_text(encoding="utf-8"))
HELLO_TYPES = yaml.safe_load((REPO / "tosca_types" / "hello-types.yaml").read_text(encoding="utf-8"))
SECTIONS = ("capability_types", "relationship_types", "node_types")


def _inlined() -> dict:
    document = copy.deepcopy(HELLO)
    document.pop("imports")
    for section in SECTIONS:
        document[section] = copy.deepcopy(HELLO_TYPES[section])
    return document


BASES = {"hello": HELLO, "hello+types": _inlined()}

TYPE_NAMES = ["tosca.nodes.Root", "tosca.nodes.Compute", "Compute", "orch.nodes.Compute", "hello.nodes.App",
              "hello.nodes.Database", "hello.nodes.Report", "tosca.nodes.SoftwareComponent", "no.such.Type",
              "tosca.relationships.HostedOn", "tosca.relationships.ConnectsTo",
              "hello.relationships.ConnectsToDatabase", "tosca.capabilities.Endpoint",
              "tosca.interfaces.node.lifecycle.Runnable", "", "hello.nodes.App.App"]
NODE_NAMES = ["server", "database", "app", "report", "SELF", "HOST", "ghost", ""]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**40), st.floats(allow_nan=False, width=32),
                    st.text(max_size=8),
                    st.sampled_from(TYPE_NAMES + NODE_NAMES + ["Standard", "create", "x.yaml"]))
FUNCTIONS = ["get_input", "get_property", "get_attribute", "concat", "join", "token", "get_operation_output",
             "get_artifact"]
keys = st.one_of(st.text(max_size=6), st.integers(-2, 5), st.sampled_from(
    ["type", "properties", "requirements", "interfaces", "inputs", "default", "get_input", "get_property",
     "get_attribute", "concat", "token", "node", "relationship", "implementation", "derived_from"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(keys, inner, max_size=3),
    st.builds(lambda f, a: {f: a}, st.sampled_from(FUNCTIONS), inner),
), max_leaves=6)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a document (dict keys and list indexes)."""
    found = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return found
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def parent_of(document: Any, path: tuple) -> Any:
    for key in path[:-1]:
        document = document[key]
    return document


def mutate(document: dict, data: st.DataObject) -> dict:
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        candidates = paths(document)
        if not candidates:
            break
        path = candidates[data.draw(st.integers(0, len(candidates) - 1), label="at")]
        parent, key = parent_of(document, path), path[-1]
        kind = data.draw(st.sampled_from(["drop", "replace", "retype", "rename"]), label="kind")
        if kind == "drop":
            del parent[key]
        elif kind == "replace":
            parent[key] = data.draw(values, label="value")
        elif kind == "retype":  # a type name (or a node name) where one was, or where one was not
            pool = NODE_NAMES if isinstance(parent.get("node") if isinstance(parent, dict) else None, str) \
                else TYPE_NAMES
            parent[key] = data.draw(st.sampled_from(pool), label="name")
        elif isinstance(parent, dict):  # rename a key: a node template, a type, a section, a property...
            new_key = data.draw(st.one_of(st.sampled_from(TYPE_NAMES + NODE_NAMES), keys), label="key")
            parent[new_key] = parent.pop(key)
    return document


class _Hung(BaseException):
    pass


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """tmp/topologies/t.yaml, with tmp/tosca_types and tmp/playbooks pointing at the repository's, so that
    hello.yaml's relative import and the inlined types' relative playbook paths still resolve."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "topologies").mkdir()
    (root / "tosca_types").symlink_to(REPO / "tosca_types")
    (root / "playbooks").symlink_to(REPO / "playbooks")
    return root / "topologies"


def test_unmutated_bases_load(workdir):
    for name, document in BASES.items():
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        assert set(load(path).nodes) == {"server", "database", "app", "report"}, name


@settings(max_examples=int(os.environ.get("ORCH_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
          derandomize=not os.environ.get("ORCH_FUZZ_RANDOM"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_mutated_hello_loads_or_is_a_load_error(workdir, base, data):
    document = mutate(BASES[base], data)
    path = workdir / "t.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")

    def alarm(signum, frame):
        raise _Hung()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        topology = load(path)
    except LoadError as exc:
        assert exc.problems, "LoadError without problems"
        event("LoadError: " + " ".join(exc.problems[0].message.split()[:3]))
        for problem in exc.problems:
            assert isinstance(problem, Problem)
            assert isinstance(problem.file, str) and isinstance(problem.place, str)
            assert isinstance(problem.message, str) and problem.message
    except _Hung:
        pytest.fail(f"load hung on:\n{path.read_text()}")
    else:
        assert isinstance(topology, Topology)
        event("loaded")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
