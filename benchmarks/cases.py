"""Benchmark cases, by name: `{shape}-{nodes}[-s{sleep}]` deploys and undeploys a generated topology;
`plan-{shape}-{nodes}` only loads and plans one (orch alone: nothing runs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shapes import SHAPES

SETS: dict[str, tuple[str, ...]] = {
    "default": ("chain-10", "chain-50", "wide-20", "wide-20-s1", "tree-50", "plan-chain-5000"),
    "quick": ("chain-3", "wide-3"),  # for CI: seconds, not minutes
}
QUICK_REPEATS = 1

_DEPLOY = re.compile(rf"^(?P<shape>{'|'.join(SHAPES)})-(?P<nodes>\d+)(?:-s(?P<sleep>\d+(?:\.\d+)?))?$")
_PLAN = re.compile(rf"^plan-(?P<shape>{'|'.join(SHAPES)})-(?P<nodes>\d+)$")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "deploy" (deploy + undeploy, every tool) or "plan" (orch load + plan)
    shape: str
    nodes: int
    sleep: float = 0.0


def parse(name: str) -> Case:
    if match := _DEPLOY.match(name):
        return Case(name, "deploy", match["shape"], int(match["nodes"]), float(match["sleep"] or 0))
    if match := _PLAN.match(name):
        return Case(name, "plan", match["shape"], int(match["nodes"]))
    raise ValueError(
        f"unknown case '{name}': expected a set ({', '.join(SETS)}), "
        "SHAPE-N, SHAPE-N-sSECONDS or plan-SHAPE-N, e.g. chain-10, wide-20-s1, plan-chain-5000"
    )


def select(spec: str) -> list[Case]:
    """'default', 'quick', or a comma-separated list of sets and case names."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        names.extend(SETS.get(part, (part,)))
    return [parse(n) for n in dict.fromkeys(names)]
