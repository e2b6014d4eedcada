"""How long `validate` takes to refuse the billion laughs (tests/unit/data/misc/bad_alias_bomb.yaml),
as a ratio to validating a small good template (tests/unit/data/misc/good.yaml) in the same process:
a ratio, not seconds, so that a busy machine slows both sides alike. The tests only check that the
bomb is refused without being expanded (tests/unit/test_load.py); the speed is read here.

    python benchmarks/alias_bomb.py [--repeats 5]

Prints one JSON line: the median CPU seconds of each side (the first, warm-up run of each not counted)
and bomb/baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISC = ROOT / "tests" / "unit" / "data" / "misc"


def cpu_seconds(validate, path: Path) -> float:
    started = time.process_time()
    problems = validate(path)
    spent = time.process_time() - started
    if path.name.startswith("bad_") and not any("alias bomb" in p.message for p in problems):
        raise SystemExit(f"{path.name} was not refused as an alias bomb: {problems}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from orchestrator.tosca import validate

    timings: dict[str, list[float]] = {"baseline": [], "bomb": []}
    for path in (MISC / "good.yaml", MISC / "bad_alias_bomb.yaml"):  # warm-up: imports, first parse
        cpu_seconds(validate, path)
    for _ in range(args.repeats):  # interleaved: a slow spell falls on both sides
        timings["baseline"].append(cpu_seconds(validate, MISC / "good.yaml"))
        timings["bomb"].append(cpu_seconds(validate, MISC / "bad_alias_bomb.yaml"))
    baseline, bomb = (statistics.median(timings[k]) for k in ("baseline", "bomb"))
    print(json.dumps({"repeats": args.repeats, "baseline_cpu_s": round(baseline, 4), "bomb_cpu_s": round(bomb, 4),
                      "bomb_over_baseline": round(bomb / baseline, 2) if baseline else None}))


if __name__ == "__main__":
    main()
