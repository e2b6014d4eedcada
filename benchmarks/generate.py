"""Synthetic TOSCA 1.3 topologies for the benchmarks.

    python benchmarks/generate.py --shape chain --nodes 10 [--sleep 1] [--teardown] --out DIR

writes DIR/topology.yaml and DIR/playbooks/. The topology is plain TOSCA 1.3 (one node type derived
from tosca.nodes.Root, DependsOn through the normative `dependency` requirement, the 1.3 `operations:`
keyname) with no host: orch runs host-less nodes on the orchestrator with the local connection, and
so does xOpera (a node without a HostedOn chain runs on `localhost`), so one file serves both.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from shapes import SHAPES, dependencies

NODE_TYPE = "bench.nodes.Step"
DEPLOY_OPERATIONS = ("create", "configure", "start")
TEARDOWN_OPERATIONS = ("stop", "delete")


@dataclass(frozen=True)
class Generated:
    directory: Path
    topology: Path
    nodes: int
    operations: tuple[str, ...]


def operations(teardown: bool) -> tuple[str, ...]:
    return DEPLOY_OPERATIONS + (TEARDOWN_OPERATIONS if teardown else ())


def playbook(operation: str, sleep: float) -> list[dict]:
    """One trivial task, the same for every operation; create also sleeps when asked.

    `command: /bin/true` rather than set_fact so that each operation ships and runs a module the way
    real operations do; `command: sleep` rather than `pause` because pause runs once per play, not
    once per host, and would serialize nothing in a wide batch.
    """
    tasks: list[dict] = [{"name": "trivial", "ansible.builtin.command": "/bin/true", "changed_when": False}]
    if operation == "create" and sleep > 0:
        tasks.append({"name": "sleep", "ansible.builtin.command": f"sleep {sleep:g}", "changed_when": False})
    return [{"name": f"bench {operation}", "hosts": "all", "gather_facts": False, "tasks": tasks}]


def topology(shape: str, count: int, sleep: float, teardown: bool) -> dict:
    deps = dependencies(shape, count)
    templates: dict[str, dict] = {}
    for node, needs in deps.items():
        template: dict = {"type": NODE_TYPE}
        if needs:
            template["requirements"] = [{"dependency": target} for target in needs]
        templates[node] = template
    return {
        "tosca_definitions_version": "tosca_simple_yaml_1_3",
        "description": f"orch benchmark: {shape} of {count} nodes, create sleeps {sleep:g}s, "
        f"teardown {'on' if teardown else 'off'}",
        "node_types": {
            NODE_TYPE: {
                "derived_from": "tosca.nodes.Root",
                "interfaces": {
                    "Standard": {
                        "type": "tosca.interfaces.node.lifecycle.Standard",
                        "operations": {op: f"playbooks/{op}.yaml" for op in operations(teardown)},
                    }
                },
            }
        },
        "topology_template": {"node_templates": templates},
    }


def generate(shape: str, count: int, out: Path, sleep: float = 0.0, teardown: bool = False) -> Generated:
    out = Path(out)
    (out / "playbooks").mkdir(parents=True, exist_ok=True)
    for op in operations(teardown):
        write_yaml(out / "playbooks" / f"{op}.yaml", playbook(op, sleep))
    path = out / "topology.yaml"
    write_yaml(path, topology(shape, count, sleep, teardown))
    return Generated(out, path, count, operations(teardown))


def write_yaml(path: Path, document: object) -> None:
    # CSafeDumper when present: a 5000-node topology takes seconds with the pure-Python dumper
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(document, f, Dumper=dumper, sort_keys=False, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=SHAPES, required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each create operation sleeps")
    parser.add_argument("--teardown", action="store_true", help="also give nodes stop/delete playbooks")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        generated = generate(args.shape, args.nodes, args.out, args.sleep, args.teardown)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{generated.topology} ({generated.nodes} nodes, operations: {', '.join(generated.operations)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
