"""Cost that should stay flat as hosts and executions grow (issue 18):

    .venv/bin/python benchmarks/scaling.py [all|hosts|executions] [--json FILE]
        [--hosts 3,10,20] [--repeats 3]      # hosts: see scaling_hosts.py
        [--executions 50] [--deployments 1]  # executions: see scaling_executions.py
        [--keep]

hosts       one node per host on simulated sites of 3, 10 and 20 hosts: deploy wall time against the
            number of hosts (target: the largest <= 1.5x the smallest), new SSH connections per host.
executions  N executions of the minimal workflow started at once through `orch serve` on the embedded
            site: all finish, each with the right counts of its own input; throughput, per-execution
            wall time, the server's peak memory (alone and with its Ansible children) and CPU.

Progress goes to stderr, tables to stdout, every figure to --json FILE.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import scaling_executions  # noqa: E402 - after the sys.path line above
import scaling_hosts  # noqa: E402

from orchestrator.sim.testing import unavailable_reason  # noqa: E402

LOCK_FILE = "/tmp/orchscale.lock"  # one run at a time: a second would take this one's site down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("all", "hosts", "executions"), default="all")
    parser.add_argument("--hosts", default="3,10,20", help="site sizes, smallest first (the ratio's baseline)")
    parser.add_argument("--repeats", type=int, default=3, help="hosts: deploys per size (the median is reported)")
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--deployments", type=int, default=1,
                        help="executions: copies of the minimal workflow (a deployment runs one execution at a time)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folders (sites still go down)")
    args = parser.parse_args()
    lock = open(LOCK_FILE, "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another scaling.py runs (it holds {LOCK_FILE})", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` takes the site down
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    result: dict = {"meta": {"orch_commit": commit, "loadavg_start": os.getloadavg(), "started": time.time()}}
    failed = False
    if args.what in ("all", "hosts"):
        reason = unavailable_reason()
        if reason:
            result["hosts"] = {"unavailable": reason}
            print(reason, file=sys.stderr)
            failed = True
        else:
            result["hosts"] = scaling_hosts.measure([int(n) for n in args.hosts.split(",")], args.repeats, args.keep)
            scaling_hosts.print_table(result["hosts"])
            failed |= result["hosts"]["failure"] is not None
    if args.what in ("all", "executions"):
        result["executions"] = scaling_executions.measure(args.executions, args.keep, args.deployments)
        scaling_executions.print_table(result["executions"])
        failed |= not result["executions"]["all_right"]
    result["meta"]["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start: {:.1f} {:.1f} {:.1f}, at end: {:.1f} {:.1f} {:.1f}".format(
        *result["meta"]["loadavg_start"], *result["meta"]["loadavg_end"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
