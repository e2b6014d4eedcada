"""Start-to-exit time of orch's short commands (issue 18, "fixed cost per command"): `orch --help`,
`orch list`, `orch status NAME` (reads the store only), and `orch outputs NAME` (needs the deployment's
topology) with its kept topology valid, then with it removed before each run (what such a command cost before
topology.cache: the loader and tosca-parser). Each is run N times (default 10) in a fresh interpreter;
median, min and max printed.

    .venv/bin/python benchmarks/command_times.py [--repeats 10] [--orch-src DIR] [--json FILE]

It deploys topologies/hello.yaml on localhost into a temporary ORCH_HOME first and undeploys it at the end.
--orch-src DIR measures another checkout (put first on PYTHONPATH), e.g. a clone at an older commit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "cmdtimes"


def _orch(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(home: Path, env: dict[str, str], args: tuple[str, ...], repeats: int,
           before=None) -> dict[str, list[float]]:
    """Wall (spawn to exit) and CPU (user+sys of the command, which a busy machine inflates less) of each run."""
    times: dict[str, list[float]] = {"wall_s": [], "cpu_s": []}
    for _ in range(repeats):
        if before is not None:
            before()
        cpu, start = _children_cpu(), time.perf_counter()
        result = _orch(home, env, *args)
        times["wall_s"].append(time.perf_counter() - start)
        times["cpu_s"].append(_children_cpu() - cpu)
        if result.returncode != 0:
            raise SystemExit(f"orch {' '.join(args)} failed: {result.stderr[-2000:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--orch-src", type=Path, help="measure this checkout instead of the venv's orch")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    options = parser.parse_args()
    env = dict(os.environ)
    if options.orch_src:
        env["PYTHONPATH"] = os.pathsep.join([str(options.orch_src.resolve()), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory(prefix="orch-cmdtimes-") as scratch:
        home, work = Path(scratch) / "home", Path(scratch) / "work"
        deployed = _orch(home, env, "deploy", str(ROOT / "topologies" / "hello.yaml"), "-n", NAME,
                         "--set", f"workdir={work}")
        if deployed.returncode != 0:
            raise SystemExit(f"deploy of hello failed: {deployed.stderr[-2000:]}")
        cache = home / "deployments" / NAME / "topology.cache"

        def forget() -> None:
            cache.unlink(missing_ok=True)

        try:
            cases = {
                "orch --help": _timed(home, env, ("--help",), options.repeats),
                "orch list": _timed(home, env, ("list",), options.repeats),
                "orch status NAME": _timed(home, env, ("status", NAME), options.repeats),
                "orch outputs NAME": _timed(home, env, ("outputs", NAME), options.repeats),
                "orch outputs NAME (no kept topology)": _timed(home, env, ("outputs", NAME), options.repeats,
                                                               before=forget),
            }
        finally:
            _orch(home, env, "undeploy", NAME)
    load = os.getloadavg()
    print(f"{'command':40} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>7}   (wall; CPU: median user+sys; "
          f"n={options.repeats}, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    for label, times in cases.items():
        wall = times["wall_s"]
        print(f"{label:40} {statistics.median(wall):9.3f} {min(wall):7.3f} {max(wall):7.3f} "
              f"{statistics.median(times['cpu_s']):7.3f}")
    if options.json:
        options.json.write_text(json.dumps({"repeats": options.repeats, "loadavg": load,
                                            "orch_src": str(options.orch_src or ROOT), "times_s": cases}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
