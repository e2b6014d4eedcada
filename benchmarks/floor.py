"""The floor: the same operations as plays of ONE `ansible-playbook` process.

It is the reference for an Ansible-based orchestrator's overhead on a topology: one Ansible start, the
operations' own tasks, and nothing else (no TOSCA, no state, no process per batch). It is derived from
the generated topology file itself: nodes and their `dependency` requirements give the waves (see
shapes.waves), the node type's operations give the plays.

Deploy: for each wave, one play per deploy operation (create, configure, start) over that wave's
nodes. Undeploy: waves in reverse, one play per teardown operation (stop, delete) the topology has.
Each node is an inventory alias of localhost (local connection, this Python), like orch's aliases;
forks = the widest wave, so a wave's nodes run at once. A play's tasks are copied from the
operation's own playbook, so the floor runs exactly the operations' tasks.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from shapes import waves

DEPLOY_ORDER = ("create", "configure", "start")
TEARDOWN_ORDER = ("stop", "delete")


@dataclass(frozen=True)
class Floor:
    inventory: Path
    deploy: Path
    undeploy: Path | None  # None: the topology has no teardown operation, nothing to run
    forks: int
    plays_deploy: int
    plays_undeploy: int


def read_topology(topology: Path) -> tuple[dict[str, list[str]], dict[str, Path]]:
    """node -> dependencies, and operation -> playbook path, from a generated topology."""
    with open(topology, encoding="utf-8") as f:
        document = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    templates = document["topology_template"]["node_templates"]
    deps = {
        name: [next(iter(r.values())) for r in (body.get("requirements") or [])]
        for name, body in templates.items()
    }
    (node_type,) = document["node_types"].values()
    ops = node_type["interfaces"]["Standard"]["operations"]
    return deps, {op: topology.parent / path for op, path in ops.items()}


def tasks_of(playbook: Path) -> list[dict]:
    with open(playbook, encoding="utf-8") as f:
        plays = yaml.safe_load(f)
    return [task for play in plays for task in play.get("tasks", [])]


def build(topology: Path, out: Path) -> Floor:
    deps, playbooks = read_topology(topology)
    layers = waves(deps)
    out.mkdir(parents=True, exist_ok=True)
    hosts = {
        node: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable} for node in deps
    }
    groups = {f"wave{i}": {"hosts": {node: None for node in layer}} for i, layer in enumerate(layers)}
    _write(out / "inventory.yaml", {"all": {"hosts": hosts, "children": groups}})

    def plays(order: tuple[str, ...], layer_indexes: list[int]) -> list[dict]:
        return [
            {
                "name": f"wave{i} {op}",
                "hosts": f"wave{i}",
                "gather_facts": False,
                "tasks": tasks_of(playbooks[op]),
            }
            for i in layer_indexes
            for op in order
            if op in playbooks
        ]

    deploy = plays(DEPLOY_ORDER, list(range(len(layers))))
    undeploy = plays(TEARDOWN_ORDER, list(reversed(range(len(layers)))))
    _write(out / "deploy.yaml", deploy)
    if undeploy:
        _write(out / "undeploy.yaml", undeploy)
    return Floor(
        out / "inventory.yaml",
        out / "deploy.yaml",
        out / "undeploy.yaml" if undeploy else None,
        forks=max(len(layer) for layer in layers),
        plays_deploy=len(deploy),
        plays_undeploy=len(undeploy),
    )


def _write(path: Path, document: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(document, f, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def ansible_playbook() -> str:
    """The ansible-playbook next to this Python (the venv's), the Ansible orch also runs."""
    local = Path(sys.executable).parent / "ansible-playbook"
    found = str(local) if local.exists() else shutil.which("ansible-playbook")
    if not found:
        raise FileNotFoundError("ansible-playbook not found next to this Python nor on PATH")
    return found


def command(floor: Floor, playbook: Path) -> list[str]:
    return [ansible_playbook(), "-i", str(floor.inventory), "--forks", str(floor.forks), str(playbook)]


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The settings orch also gives Ansible that change the work done (no facts gathered, no retry
    files, no colour); everything else is Ansible's default."""
    env = dict(base if base is not None else os.environ)
    env.update(
        {
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_GATHERING": "explicit",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_PIPELINING": "True",
        }
    )
    return env
