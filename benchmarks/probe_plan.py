"""What `orch plan` does, in-process, timed by phase: import (orch's modules), load (YAML, types,
checks, tosca-parser), install_plan (the DAG), render (JSON). Prints one JSON line, with the CPU time of
load + plan (wall time includes waiting for a core on a busy machine) and the peak RSS so far; writes
its own rusage like orch_self.py.

    python benchmarks/probe_plan.py TOPOLOGY
"""

from __future__ import annotations

import atexit
import json
import resource
import sys
import time

from orch_self import _write_self_usage


def main(topology: str) -> dict:
    importing = time.perf_counter()
    from orchestrator import render
    from orchestrator.plan.lifecycle import install_plan
    from orchestrator.plan.view import plan_view
    from orchestrator.tosca.loader import load

    started = time.perf_counter()  # orch's modules imported (and tosca-parser, networkx with them)
    cpu_started = time.process_time()
    loaded = load(topology, {})
    loaded_at = time.perf_counter()
    graph = install_plan(loaded)
    planned_at = time.perf_counter()
    cpu_planned = time.process_time()
    text = render.RENDERERS["json"](plan_view(graph))
    rendered_at = time.perf_counter()
    return {
        "nodes": len(loaded.nodes),
        "steps": graph.number_of_nodes(),
        "render_chars": len(text),
        "import_s": started - importing,
        "load_s": loaded_at - started,
        "plan_s": planned_at - loaded_at,
        "render_s": rendered_at - planned_at,
        "load_plan_s": planned_at - started,
        "load_plan_cpu_s": cpu_planned - cpu_started,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    atexit.register(_write_self_usage)
    print(json.dumps(main(sys.argv[1])))
