"""The declarative workflows as DAGs (install_plan / uninstall_plan) and their renderings.

Orderings are asserted with paths and edges of the graph, never with positions in a list: any
topological order the scheduler picks must respect them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import networkx as nx
import pytest

from orchestrator import render
from orchestrator.model import Step, StepKind
from orchestrator.plan import install_plan, uninstall_plan
from orchestrator.plan.lifecycle import node_step_id, ordered_steps
from orchestrator.plan.view import plan_view
from orchestrator.tosca import load

DATA = Path(__file__).parent / "data"
WIRED = "web.db[1]->db"  # relationship steps of web's second requirement (db, test.relationships.Wired)


@pytest.fixture(scope="module")
def topology():
    return load(DATA / "plan.yaml")


@pytest.fixture(scope="module")
def install(topology):
    return install_plan(topology)


@pytest.fixture(scope="module")
def uninstall(topology):
    return uninstall_plan(topology)


def before(graph: nx.DiGraph, a: str, b: str) -> bool:
    """a must finish before b starts."""
    assert a in graph and b in graph, (a, b)
    return nx.has_path(graph, a, b)


def unordered(graph: nx.DiGraph, a: str, b: str) -> bool:
    return not nx.has_path(graph, a, b) and not nx.has_path(graph, b, a)


# -- install ----------------------------------------------------------------------------------------


def test_install_is_a_dag_of_steps(install, topology):
    assert nx.is_directed_acyclic_graph(install)
    for step_id, data in install.nodes(data=True):
        step = data["step"]
        assert isinstance(step, Step) and step.id == step_id
        assert step.node in topology.nodes
        assert step.kind is StepKind.OPERATION
    node_steps = {s for s in install if not install.nodes[s]["step"].is_relationship}
    assert node_steps == {node_step_id(n, op) for n in topology.nodes
                          for op in ("create", "configure", "start")}


@pytest.mark.parametrize("node", ["server", "db", "cache", "web", "monitor"])
def test_create_configure_start_per_node(install, node):
    create, configure, start = (node_step_id(node, op) for op in ("create", "configure", "start"))
    assert install.has_edge(create, configure) and install.has_edge(configure, start)
    steps = [install.nodes[s]["step"] for s in (create, configure, start)]
    assert [s.operation for s in steps] == ["Standard.create", "Standard.configure", "Standard.start"]
    assert [(s.running_state, s.state) for s in steps] == [
        ("creating", "created"), ("configuring", "configured"), ("starting", "started")]


@pytest.mark.parametrize(("source", "target"), [
    ("db", "server"), ("cache", "server"), ("web", "server"),  # HostedOn
    ("monitor", "web"),  # DependsOn
])
def test_hosted_on_and_depends_on_target_started_before_source_created(install, source, target):
    assert install.has_edge(f"{target}.start", f"{source}.create")
    assert before(install, f"{target}.start", f"{source}.create")
    assert not before(install, f"{source}.create", f"{target}.start")


@pytest.mark.parametrize("target", ["db", "cache"])
def test_connects_to_target_started_before_source_configured(install, target):
    assert before(install, f"{target}.start", "web.configure")
    assert not before(install, "web.configure", f"{target}.start")
    # but the source may be created while the target is still starting
    assert not before(install, f"{target}.start", "web.create")
    assert unordered(install, f"{target}.start", "web.create")


def test_plain_connects_to_adds_no_relationship_steps(install):
    assert not [s for s in install if s.startswith("web.cache[")]
    assert install.has_edge("cache.start", "web.configure")


def test_pre_configure_source_between_source_create_and_configure(install):
    pre = f"{WIRED}.pre_configure_source"
    step = install.nodes[pre]["step"]
    assert (step.node, step.operation, step.requirement, step.side) == (
        "web", "Configure.pre_configure_source", 1, "source")
    assert install.has_edge("web.create", pre) and install.has_edge(pre, "web.configure")
    assert before(install, "db.start", pre)
    assert before(install, pre, "web.start")


@pytest.mark.parametrize(("operation", "side"), [("post_configure_source", "source"),
                                                 ("post_configure_target", "target")])
def test_post_configure_after_source_configure_before_source_start(install, operation, side):
    step_id = f"{WIRED}.{operation}"
    assert install.nodes[step_id]["step"].side == side
    assert install.has_edge("web.configure", step_id) and install.has_edge(step_id, "web.start")
    assert before(install, f"{WIRED}.pre_configure_source", step_id)
    assert before(install, "db.configure", step_id)


def test_add_target_after_both_started(install):
    add = f"{WIRED}.add_target"
    assert install.nodes[add]["step"].side == "source"
    assert install.has_edge("web.start", add) and install.has_edge("db.start", add)
    assert not before(install, add, "web.start")


def test_no_relationship_steps_without_implementation(install):
    # Wired declares no pre_configure_target or add_source
    assert f"{WIRED}.pre_configure_target" not in install
    assert f"{WIRED}.add_source" not in install
    assert f"{WIRED}.remove_target" not in install  # an undeploy operation


def test_unrelated_nodes_are_not_ordered(install):
    assert unordered(install, "db.start", "cache.start")
    assert unordered(install, "db.create", "web.create")


def test_ordered_steps_respect_the_edges(install):
    order = [s.id for s in ordered_steps(install)]
    assert sorted(order) == sorted(install.nodes)
    position = {step_id: i for i, step_id in enumerate(order)}
    assert all(position[a] < position[b] for a, b in install.edges)


# -- uninstall --------------------------------------------------------------------------------------


def test_uninstall_stop_then_delete(uninstall, topology):
    assert nx.is_directed_acyclic_graph(uninstall)
    for node in topology.nodes:
        assert uninstall.has_edge(f"{node}.stop", f"{node}.delete")
        stop, delete = uninstall.nodes[f"{node}.stop"]["step"], uninstall.nodes[f"{node}.delete"]["step"]
        assert (stop.operation, stop.state) == ("Standard.stop", "stopped")
        assert (delete.operation, delete.state) == ("Standard.delete", "initial")
    assert not [s for s in uninstall if s.endswith((".create", ".configure", ".start"))]


@pytest.mark.parametrize(("source", "target"), [
    ("db", "server"), ("cache", "server"), ("web", "server"), ("web", "db"), ("web", "cache"),
    ("monitor", "web")])
def test_source_deleted_before_target_stopped(uninstall, source, target):
    assert uninstall.has_edge(f"{source}.delete", f"{target}.stop")
    assert before(uninstall, f"{source}.stop", f"{target}.stop")
    assert not before(uninstall, f"{target}.stop", f"{source}.delete")


def test_remove_target_before_source_stop(uninstall):
    remove = f"{WIRED}.remove_target"
    step = uninstall.nodes[remove]["step"]
    assert (step.operation, step.requirement, step.side) == ("Configure.remove_target", 1, "source")
    assert uninstall.has_edge(remove, "web.stop")
    assert before(uninstall, remove, "db.stop")


def test_uninstall_whole_chain(uninstall):
    assert before(uninstall, "monitor.delete", "server.delete")
    assert unordered(uninstall, "db.stop", "cache.stop")


# -- the hello example ---------------------------------------------------------------------------------


def test_hello_plan():
    hello = load(Path(__file__).resolve().parents[2] / "topologies" / "hello.yaml")
    graph = install_plan(hello)
    assert nx.is_directed_acyclic_graph(graph)
    assert before(graph, "server.start", "database.create")
    assert before(graph, "database.start", "app.configure")
    assert before(graph, "app.start", "report.create")
    pre = [s for s in graph if s.endswith(".pre_configure_source")]
    assert len(pre) == 1 and before(graph, "app.create", pre[0]) and before(graph, pre[0], "app.configure")
    teardown = uninstall_plan(hello)
    assert before(teardown, "report.delete", "app.stop")
    assert before(teardown, "app.delete", "database.stop")


# -- render ---------------------------------------------------------------------------------------------


def graphs(install, uninstall):
    return {"install": install, "uninstall": uninstall}


@pytest.mark.parametrize("which", ["install", "uninstall"])
@pytest.mark.parametrize("fmt", sorted(render.RENDERERS))
def test_render_mentions_every_step(install, uninstall, which, fmt):
    graph = graphs(install, uninstall)[which]
    text = render.RENDERERS[fmt](plan_view(graph))
    assert isinstance(text, str) and text
    for step_id, data in graph.nodes(data=True):
        step = data["step"]
        if fmt == "json":
            assert json.dumps(step_id) in text, step_id
        elif fmt == "dot":
            assert f'"{step_id}"' in text, step_id
        elif step.is_relationship:
            assert step_id in text, step_id
        else:
            assert f"{step.node} {step.operation}" in text, step_id


def test_render_text_waves(install):
    text = render.as_text(plan_view(install))
    waves = re.findall(r"^wave (\d+):$", text, flags=re.MULTILINE)
    assert [int(w) for w in waves] == list(range(1, len(waves) + 1))
    assert len(waves) == len(list(nx.topological_generations(install)))
    first_wave = text.split("wave 2:")[0]
    assert "server Standard.create" in first_wave and "web Standard.create" not in first_wave
    marked = render.as_text(plan_view(install, {"web.create"}))
    assert "web Standard.create\n" in marked + "\n" and "server Standard.create  (no-op)" in marked


def test_render_json(install):
    data = json.loads(render.as_json(plan_view(install)))
    steps = {s["id"]: s for s in data["steps"]}
    assert set(steps) == set(install.nodes)
    for step_id, step in steps.items():
        assert step["after"] == sorted(install.predecessors(step_id))
    assert steps[f"{WIRED}.add_target"]["side"] == "source"
    assert steps["web.start"]["state"] == "started"
    position = {s["id"]: i for i, s in enumerate(data["steps"])}
    assert all(position[a] < position[b] for a, b in install.edges)


def test_render_dot_and_mermaid_edges(install):
    dot = render.as_dot(plan_view(install))
    assert dot.startswith("digraph plan {") and dot.rstrip().endswith("}")
    for a, b in install.edges:
        assert f'"{a}" -> "{b}";' in dot
    mermaid = render.as_mermaid(plan_view(install))
    assert mermaid.splitlines()[0] == "flowchart LR"
    ids = dict(re.findall(r'^  (s\d+)\["([^"]*)"\]$', mermaid, flags=re.MULTILINE))
    assert len(ids) == install.number_of_nodes()
    assert len(re.findall(r"^  s\d+ --> s\d+$", mermaid, flags=re.MULTILINE)) == install.number_of_edges()


def test_render_non_ascii_names_text_json_mermaid():
    graph = install_plan(load(DATA / "plan_unicode.yaml"))
    assert "données Standard.create" in render.as_text(plan_view(graph))
    assert "données Standard.create" in render.as_mermaid(plan_view(graph))
    assert {s["id"] for s in json.loads(render.as_json(plan_view(graph)))["steps"]} >= {"données.create"}


def test_render_dot_non_ascii_names():
    dot = render.as_dot(plan_view(install_plan(load(DATA / "plan_unicode.yaml"))))
    assert '"données.create" [label="données Standard.create"];' in dot
    assert '"serveur.start" -> "données.create";' in dot
    assert "\\u" not in dot  # Graphviz has no \u escape
    assert r'"say \"hi\".create" [label="say \"hi\" Standard.create"];' in dot


def test_render_mermaid_quotes():
    mermaid = render.as_mermaid(plan_view(install_plan(load(DATA / "plan_unicode.yaml"))))
    assert "[\"say 'hi' Standard.create\"]" in mermaid


def test_cli_offers_every_renderer():
    """`orch plan --format` lists the formats without importing the renderers (kept out of startup)."""
    from orchestrator.cli import RENDER_FORMATS

    assert sorted(RENDER_FORMATS) == sorted(render.RENDERERS)
