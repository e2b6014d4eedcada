"""Run the `orch` CLI in this process and, at exit, write this process's own rusage (not its children's)
to the file named by $ORCH_BENCH_SELF_RUSAGE: orch's own peak RSS and CPU, apart from Ansible's.

    python benchmarks/orch_self.py [orch arguments...]

It is what the `orch` console script does (call orchestrator.cli.main) plus an atexit hook, so the
measured process is orch itself, not a wrapper around it.
"""

from __future__ import annotations

import atexit
import json
import os
import resource


def _write_self_usage() -> None:
    path = os.environ.get("ORCH_BENCH_SELF_RUSAGE")
    if not path:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024}, f)


if __name__ == "__main__":
    atexit.register(_write_self_usage)  # runs on the CLI's sys.exit too
    from orchestrator.cli import main

    main()
