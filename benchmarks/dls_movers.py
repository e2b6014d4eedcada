"""The movers' benchmark (issue 17): the same stage-in through the embedded mover and through Airflow.

    python benchmarks/dls_movers.py [--sizes 10MB,1GB] [--files 1,1000] [--movers ansible,airflow]
        [--json FILE] [--site orchbm] [--keep]

Each dataset (random bytes, made on the simulated site's data host: SIZE split into FILES files of equal size)
is staged in onto the login host by `orch run` of benchmarks/data/dls-stagein.yaml, a topology that only stages
in, deployed once per mover (mover=ansible: through this machine with Ansible; mover=airflow: orch's DAGs on
the local Airflow of `orch dls up`). Per case:

  step_s      the stage_in step's wall time, from orch's store: the first operation run's start to the last
              one's end (Runnable.submit moves or triggers, Runnable.run waits for the DAG run)
  MB/s        the dataset's bytes (10^6 per MB) over step_s
  dag_s       Airflow only: the DAG run's own duration, end_date - start_date from the REST API
  overhead_s  Airflow only: step_s - dag_s, what orch adds around the DAG run (trigger, queueing, watching)
  run_s       the whole `orch run`, for reference

The checksum orch records (the sha256 of the dataset's manifest) is printed too: both movers must agree.
It brings up its own site (`orchbm` unless --site) and its own Airflow (`orch dls up` in a temporary ORCH_HOME
on a free loopback port), and takes both down at the end, always, removing its folder. No time is asserted.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.dls import client as dls_client  # noqa: E402 - after the sys.path line above
from orchestrator.dls import local  # noqa: E402 - after the sys.path line above
from orchestrator.sim import down, host  # noqa: E402 - after the sys.path line above
from orchestrator.sim.testing import SimSite, bring_up, unavailable_reason  # noqa: E402 - after the sys.path line
from orchestrator.store.sqlite import Store  # noqa: E402 - after the sys.path line above

TOPOLOGY = ROOT / "benchmarks" / "data" / "dls-stagein.yaml"
AIRFLOW = ROOT / ".venv-dls" / "bin" / "airflow"
HOSTS = ("login", "data", "builder")
SOURCE_DIR = "/data/bench-src"   # on the data host
TARGET_DIR = "/data/bench-in"    # on the login host
SIZES = {"10MB": 10 * 10**6, "1GB": 10**9}
FILES = (1, 1000)
MOVERS = ("ansible", "airflow")
# Each simulated host writes into a tmpfs of 1 GiB (orchestrator.sim.host.TMPFS_SIZE): too small for a 1 GB dataset
# and the embedded mover's archive of it beside it. The benchmark's own site gets more (memory is taken only as
# written; each case's data is removed after it).
HOST_TMPFS = "6g"
JOB_ID = re.compile(r"^(?P<dag>[A-Za-z0-9_.-]+)/(?P<run>orch-[A-Za-z0-9_.:+-]+)$")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Case:
    size: str
    files: int
    mover: str

    @property
    def name(self) -> str:
        return f"{self.size}x{self.files}"

    @property
    def nbytes(self) -> int:
        return SIZES[self.size]


@dataclass(frozen=True)
class Result:
    size: str
    files: int
    mover: str
    bytes: int
    step_s: float
    mb_per_s: float
    run_s: float
    submit_s: float
    watch_s: float
    dag_s: float | None
    overhead_s: float | None
    dag_run_id: str | None
    checksum: str
    staged_files: int


def orch(env: dict[str, str], *args: str, timeout: float = 3600) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"orch {' '.join(args[:2])} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return done, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_dataset(site: SimSite, case: Case) -> str:
    """SIZE of random bytes in FILES files on the data host; its path there."""
    path = f"{SOURCE_DIR}/{case.name}"
    each = case.nbytes // case.files
    script = (f"rm -rf {shlex.quote(path)} && mkdir -p {shlex.quote(path)} && cd {shlex.quote(path)} && "
              f"for i in $(seq -w 1 {case.files}); do head -c {each} /dev/urandom > f$i.bin || exit 1; done")
    done = site.ssh("data", script, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"making {path} on the data host failed: {done.stderr}")
    return path


def _seconds(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def dag_run_of(outputs: list[dict]) -> tuple[str, str] | None:
    """The DAG and run id the Airflow mover triggered, from its operations' outputs (TOSCA_JOB_ID)."""
    for values in outputs:
        for value in values.values():
            match = JOB_ID.match(value) if isinstance(value, str) else None
            if match:
                return match["dag"], match["run"]
    return None


def measure(site: SimSite, env: dict[str, str], home: Path, airflow: dls_client.Client | None,
            case: Case, source: str) -> Result:
    deployment = f"bm-{case.mover}"
    target = f"{TARGET_DIR}/{case.name}-{case.mover}"
    _done, run_s = orch(env, "run", deployment, "--set", f"dataset=data:{source}", "--set", f"target_path={target}")
    store = Store(home)
    try:
        execution = max(store.executions(deployment), key=lambda e: e.started)
        runs = [r for r in store.operation_runs(deployment, execution.id) if r.node == "stage_in"]
        attributes = store.attributes(deployment)["stage_in"]
    finally:
        store.close()
    if not runs or any(r.ended is None or r.status != "done" for r in runs):
        raise RuntimeError(f"{case}: the stage_in step's operation runs are not all done: {runs}")
    step_s = max(r.ended for r in runs) - min(r.started for r in runs)
    by_op = {r.operation.rsplit(".", 1)[-1]: r.ended - r.started for r in runs}
    dag_s = overhead_s = run_id = None
    if case.mover == "airflow":
        found = dag_run_of([r.outputs or {} for r in runs])
        if found is None or airflow is None:
            raise RuntimeError(f"{case}: no DAG run id in the stage_in operations' outputs")
        run = airflow.run(*found)
        start, end = _seconds(run.get("start_date")), _seconds(run.get("end_date"))
        if run.get("state") != "success" or start is None or end is None:
            raise RuntimeError(f"{case}: DAG run {found} is {run.get('state')} ({start}..{end})")
        dag_s, overhead_s, run_id = end - start, step_s - (end - start), "/".join(found)
    site.ssh("login", f"rm -rf {shlex.quote(target)}", timeout=600)  # room for the next case
    return Result(case.size, case.files, case.mover, case.nbytes, round(step_s, 3),
                  round(case.nbytes / 1e6 / step_s, 2), round(run_s, 3), round(by_op.get("submit", 0.0), 3),
                  round(by_op.get("run", 0.0), 3), None if dag_s is None else round(dag_s, 3),
                  None if overhead_s is None else round(overhead_s, 3), run_id,
                  str(attributes.get("checksum")), int(attributes.get("files") or 0))


def print_table(results: list[Result]) -> None:
    header = (f"{'dataset':<12}{'mover':<9}{'step s':>9}{'MB/s':>9}{'dag s':>9}{'overhd s':>10}{'run s':>9}"
              f"{'files':>7}  checksum")
    print(header)
    print("-" * len(header))
    for r in results:
        dag = f"{r.dag_s:9.2f}" if r.dag_s is not None else f"{'-':>9}"
        over = f"{r.overhead_s:10.2f}" if r.overhead_s is not None else f"{'-':>10}"
        print(f"{r.size + ' x' + str(r.files):<12}{r.mover:<9}{r.step_s:9.2f}{r.mb_per_s:9.1f}{dag}{over}"
              f"{r.run_s:9.2f}{r.staged_files:7d}  {r.checksum[:12]}")
    print()
    pairs = {(r.size, r.files, r.mover): r for r in results}
    for (size, files, mover), r in pairs.items():
        other = pairs.get((size, files, "ansible"))
        if mover == "airflow" and other:
            same = "same checksum" if other.checksum == r.checksum else "CHECKSUMS DIFFER"
            print(f"{size} x {files}: airflow/ansible step time {r.step_s / other.step_s:.2f}x, {same}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"subset of {','.join(SIZES)}")
    parser.add_argument("--files", default=",".join(map(str, FILES)), help="files per dataset, e.g. 1,1000")
    parser.add_argument("--movers", default=",".join(MOVERS), help=f"subset of {','.join(MOVERS)}")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--site", default="orchbm", help="the simulated site's name (one run per name at once)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, orch home)")
    args = parser.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    movers = [m for m in args.movers.split(",") if m]
    bad = [s for s in sizes if s not in SIZES] + [m for m in movers if m not in MOVERS]
    if bad:
        parser.error(f"unknown size or mover: {', '.join(bad)}")
    try:
        files = [int(f) for f in args.files.split(",") if f]
    except ValueError:
        parser.error(f"--files: whole numbers, comma-separated, not {args.files!r}")
    if any(f < 1 for f in files):
        parser.error("--files: at least 1")
    reason = unavailable_reason()
    if reason:
        log(f"this machine cannot run the simulated site: {reason}")
        return 2
    if "airflow" in movers and not AIRFLOW.is_file():
        log(f"{AIRFLOW} missing: python3 -m venv .venv-dls && .venv-dls/bin/pip install -e '.[dls]'")
        return 2

    lock = open(f"/tmp/{args.site}.lock", "a")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another run on site {args.site} holds /tmp/{args.site}.lock")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` takes everything down
    work = Path(tempfile.mkdtemp(prefix="obm-", dir="/tmp"))  # short: ssh's ControlPath limit
    home = work / "home"
    site_dir = work / "site"
    env = {**os.environ, "ORCH_HOME": str(home)}
    for name in ("ORCH_AIRFLOW", "VAULT_ADDR", "VAULT_TOKEN", "ORCH_DLS_USERNAME", "ORCH_DLS_PASSWORD"):
        env.pop(name, None)
    results: list[Result] = []
    started_airflow = False
    loadavg_start = os.getloadavg()
    try:
        down(args.site, site_dir)
        log(f"site {args.site} up in {site_dir}")
        host.TMPFS_SIZE = HOST_TMPFS  # read when each host starts: this site only, in this process
        site = bring_up(args.site, site_dir, HOSTS)
        airflow = None
        if "airflow" in movers:
            log("orch dls up")
            started_airflow = True
            orch(env, "dls", "up", "--port", str(free_port()), "--airflow", str(AIRFLOW), timeout=900)
            airflow = dls_client.Client(dls_client.Service.from_file(local.Layout.of(home).service_file))
        for mover in movers:
            log(f"deploy bm-{mover}")
            orch(env, "deploy", str(TOPOLOGY), "-n", f"bm-{mover}", "-i", str(site_dir / "site.yaml"),
                 "--set", f"mover={mover}")
        for size in sizes:
            for count in files:
                source = make_dataset(site, Case(size, count, movers[0]))
                for mover in movers:
                    case = Case(size, count, mover)
                    log(f"stage-in {case.name} with {mover}")
                    results.append(measure(site, env, home, airflow, case, source))
                    log(f"  {json.dumps(asdict(results[-1]))}")  # each case as it ends: a cut-short run keeps it
                site.ssh("data", f"rm -rf {shlex.quote(source)}", timeout=600)
        for mover in movers:
            orch(env, "undeploy", f"bm-{mover}")
    finally:
        if started_airflow:
            log("orch dls down")
            subprocess.run([sys.executable, "-m", "orchestrator.cli", "dls", "down"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300, check=False)
        log(f"site {args.site} down")
        down(args.site, site_dir)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    loadavg_end = os.getloadavg()
    print(f"orch {commit}; load average (1, 5, 15 min) at start {loadavg_start[0]:.1f} {loadavg_start[1]:.1f} "
          f"{loadavg_start[2]:.1f}, at end {loadavg_end[0]:.1f} {loadavg_end[1]:.1f} {loadavg_end[2]:.1f}\n")
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"commit": commit, "loadavg_start": loadavg_start, "loadavg_end": loadavg_end,
                                         "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
