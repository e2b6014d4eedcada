"""An execution's overhead against a hand-written baseline (issue 18): the minimal workflow's exec_job
(stage in from the data host, the word count as a Slurm job, stage out here) on orch's simulated site,
three ways, side by side in one run:

    python benchmarks/run_overhead.py [--cases sample,large] [--size-mb 1024] [--repeats 3]
        [--no-serve] [--no-embedded] [--json FILE] [--keep]

baseline   one script doing the same work by hand, from this machine, as the same cluster user
           (benchmarks/overhead_baseline.py: a tar stream over SSH with sha256 manifests, the same job
           line under `sbatch --wait`, the result copied back and checked)
orch run   `orch run wordcount --set dataset=data:/data/...`, spawn to exit
serve      the same through `orch serve` (a user with their own SSH key, as a scientist): from the POST of
           /api/v1/executions to the first GET that shows the execution done (polled every 50 ms)
embedded   `orch run` of the same deployment on the embedded site (sites/localhost.yaml with paths under
           this run's work folder, its own ORCH_HOME), beside a baseline done by hand on this machine

Cases: `sample` (workflows/wordcount/data/sample, on the data host as in tests/e2e) and `large` (text
files totalling --size-mb MB, made on the data host). Where orch's time goes comes from its store: each
operation's run (stage_in / job / stage_out, submit and run), the time between them, and before the
execution starts (process start, load, plan) and after it ends.

Brings up its own site, `orchovh`, in a fresh folder under /tmp, and takes it down at the end, also on
an error, Ctrl-C or SIGTERM. One run at a time (/tmp/orchovh.lock).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "serve"))

import overhead_baseline as baseline  # noqa: E402 - after the sys.path lines above
from benchrun import hold_single_run, orch_tree  # noqa: E402 - the kit's modules, by their plain names
from live_server import Server  # noqa: E402 - the serve tests' helper

from orchestrator.api import Orchestrator  # noqa: E402
from orchestrator.sim import down  # noqa: E402
from orchestrator.sim import host as sim_host  # noqa: E402
from orchestrator.sim.testing import SimSite, bring_up, unavailable_reason  # noqa: E402
from orchestrator.store.sqlite import Store  # noqa: E402

SITE = "orchovh"  # never orchtest, orchbench, orchrel
HOSTS = ("login", "data", "builder")
LOCK_FILE = "/tmp/orchovh.lock"
# Each simulated host writes into a tmpfs of 1 GiB by default (orchestrator.sim.host.TMPFS_SIZE): too small for
# the 1 GB case, its pack and its unpacked copy. This site gets more (memory is taken only as written).
HOST_TMPFS = "6g"
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"
DEPLOYMENT = "wordcount"
EXPOSED = "minimal@ovh@exec_job"
STEPS = ("stage_in", "job", "stage_out")
BASELINE_WORK = "/scratch/ovh-baseline"  # on the login host


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def orch(home: Path, *args: str, timeout: float = 3600) -> dict:
    """One orch command: its output, wall time, and the wall-clock times of its spawn and exit."""
    spawned, started = time.time(), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    wall, exited = time.monotonic() - started, time.time()
    if done.returncode != 0:
        err = done.stderr if len(done.stderr) < 6000 else done.stderr[:3000] + "\n...\n" + done.stderr[-3000:]
        raise RuntimeError(f"orch {' '.join(args[:2])} failed ({done.returncode}):\n{err}")
    return {"stdout": done.stdout, "wall_s": wall, "spawned": spawned, "exited": exited}


# ---- where orch's time goes, from its store ----

def breakdown(home: Path, execution_id: str, began: float, finished: float) -> dict:
    """began/finished: wall-clock times of the spawn / POST and of the exit / status seen done."""
    store = Store(home)
    try:
        execution = store.execution(execution_id)
        runs = store.operation_runs(DEPLOYMENT, execution_id)
    finally:
        store.close()
    if execution is None or execution.status != "done" or execution.ended is None:
        raise RuntimeError(f"execution {execution_id}: {execution}")
    operations = {f"{r.node}.{r.operation.rsplit('.', 1)[-1]}": r.ended - r.started for r in runs}
    result = {f"{step}_s": sum(v for k, v in operations.items() if k.startswith(step + ".")) for step in STEPS}
    result["before_execution_s"] = execution.started - began
    result["between_operations_s"] = (execution.ended - execution.started) - sum(operations.values())
    result["after_execution_s"] = finished - execution.ended
    result["operations_s"] = {k: round(v, 3) for k, v in operations.items()}
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}


# ---- SSH connections each host's sshd accepted (as benchmarks/sim_latency.py counts them) ----

def log_offsets(site: SimSite) -> dict[str, int]:
    return {h: (site.directory / "hosts" / h / "init.log").stat().st_size for h in HOSTS}


def connections_since(site: SimSite, offsets: dict[str, int]) -> dict[str, int]:
    counts = {}
    for h in HOSTS:
        with open(site.directory / "hosts" / h / "init.log", "rb") as f:
            f.seek(offsets[h])
            counts[h] = sum(1 for line in f if line.startswith(b"Accepted "))
    return counts


def counted(site: SimSite, measure, *args) -> dict:
    """One measured way, with the new SSH connections it made to each host."""
    offsets = log_offsets(site)
    result = measure(*args)
    time.sleep(0.2)  # the sshd writes its line at authentication; let a late write land
    connections = connections_since(site, offsets)
    return {**result, "ssh_connections": connections, "ssh_connections_n": sum(connections.values())}


# ---- the three ways ----

def cli_run(home: Path, dataset: str, results: Path) -> dict:
    done = orch(home, "run", DEPLOYMENT, "--set", f"dataset={dataset}", "--set", f"result_data_path={results}")
    execution_id = done["stdout"].split()[0]
    return {"total_s": round(done["wall_s"], 3), "execution": execution_id,
            **breakdown(home, execution_id, done["spawned"], done["exited"])}


class Service:
    """`orch serve` on the site's deployment, with one user who runs with their own SSH key."""

    def __init__(self, site: SimSite, home: Path, work: Path):
        api = Orchestrator(home)
        try:
            api.expose(DEPLOYMENT, "exec_job", EXPOSED)
            self.headers = {"Authorization": f"Bearer {api.create_user('ovh')}"}
        finally:
            api.close()
        self.home, self.data_root = home, work / "served"
        self.data_root.mkdir()
        self.server = Server(home, work / "serve.log", "--data-root", str(self.data_root))
        self.server.start()
        key = self._call("post", "/ssh_keys", json={"cluster_user": site["ssh_user"]})
        for host in HOSTS:  # the scientist adds their key to their account on the cluster
            added = site.ssh(host, f"printf '%s\\n' {shlex.quote(key['public_key'])} >> ~/.ssh/authorized_keys")
            if added.returncode != 0:
                raise RuntimeError(f"adding the user's key on {host}: {added.stderr}")
        self.key_id = key["id"]

    def _call(self, method: str, path: str, **kwargs) -> dict:
        reply = httpx.request(method, f"{self.server.url}/api/v1{path}", headers=self.headers, timeout=60, **kwargs)
        reply.raise_for_status()
        return reply.json()

    def run(self, dataset: str, name: str, poll_s: float) -> dict:
        results = self.data_root / name
        inputs = {"dataset": dataset, "result_data_path": str(results)}
        cpu_before, gets = self._server_cpu(), []
        posted, started = time.time(), time.monotonic()
        execution_id = self._call("post", "/executions", json={"workflow": EXPOSED, "inputs": inputs,
                                                               "ssh_key": self.key_id})["id"]
        niceness: set[str] = set()
        while True:
            asked = time.monotonic()
            view = self._call("get", f"/executions/{execution_id}")
            gets.append(time.monotonic() - asked)
            if view["status"] != "running":
                break
            niceness |= self._workers_autogroups()
            time.sleep(poll_s)
        seen = time.monotonic() - started
        if view["status"] != "done":
            raise RuntimeError(f"served execution {execution_id}: {view['status']}: {view['error']}")
        # the total is the server's own end (the reply's `ended`): polling adds up to poll_s to `seen_s`
        return {"total_s": round(view["ended"] - posted, 3), "seen_s": round(seen, 3), "execution": execution_id,
                "result_dir": str(results), "server_cpu_s": round(self._server_cpu() - cpu_before, 3),
                "gets": len(gets), "get_median_s": round(statistics.median(gets), 4),
                "worker_autogroups": sorted(niceness),
                "api_steps": view["steps"], **breakdown(self.home, execution_id, posted, view["ended"])}

    def _workers_autogroups(self) -> set[str]:
        """The CPU share the server's Ansible workers get: their autogroup's nice (the CPU is shared between
        autogroups, the sessions, first; `orch serve` runs its executions' workers at a nice of their own)."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.server.process.pid:
                    found.add((stat.parent / "autogroup").read_text().strip().rsplit(" ", 1)[-1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile, or no autogroups
        return found

    def _server_cpu(self) -> float:
        """The server process's own CPU (user + system), its Ansible children apart: is it busy answering?"""
        fields = Path(f"/proc/{self.server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.server.stop()


# ---- the sites ----

def deploy_on_site(site: SimSite, home: Path) -> dict:
    log("deploy the minimal workflow on the simulated site")
    done = orch(home, "deploy", str(TOPOLOGY), "-n", DEPLOYMENT, "-i", str(site.directory / "site.yaml"))
    return {"deploy_s": round(done["wall_s"], 2), **job_environment(home)}


def job_environment(home: Path) -> dict:
    """What the job's launch line is made of: the image on the cluster and the runtime's Python."""
    store = Store(home)
    try:
        attributes = store.attributes(DEPLOYMENT)
    finally:
        store.close()
    return {"image_path": attributes["image_transfer"]["image_path"], "python": attributes["runtime"]["python"]}


def embedded_site_file(work: Path) -> Path:
    """sites/localhost.yaml with its folders under this run's work folder, not /tmp/orch-embedded."""
    values = yaml.safe_load((ROOT / "sites" / "localhost.yaml").read_text())
    for key, value in values.items():
        if isinstance(value, str) and value.startswith("/tmp/orch-embedded/"):
            values[key] = str(work / value.removeprefix("/tmp/orch-embedded/"))
    path = work / "site.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def place_datasets(site: SimSite, cases: list[str], size_mb: float) -> dict[str, str]:
    """The datasets on the data host: the case's folder there."""
    places = {}
    if "sample" in cases:
        copied = subprocess.run(["scp", "-q", "-F", str(site.ssh_config), "-r", str(SAMPLE), "data:/data/"],
                                capture_output=True, text=True, timeout=120, check=False)
        if copied.returncode != 0:
            raise RuntimeError(f"scp of the sample: {copied.stderr}")
        places["sample"] = "/data/sample"
    if "large" in cases:
        log(f"make {size_mb:g} MB of text on the data host")
        places["large"] = f"/data/ovh-large-{size_mb:g}mb"
        baseline.make_dataset(site.ssh_config, places["large"], size_mb)
    return places


# ---- the measurement ----

def reference_counts(folder: Path) -> list[str]:
    counter: Counter[str] = Counter()
    for path in sorted(folder.glob("*.txt")):
        counter.update(re.findall(r"[a-z0-9]+", path.read_text().lower()))
    return [f"{w} {c}" for w, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def same_result(expected: Path, got: Path, what: str) -> None:
    if (got / "counts.txt").read_bytes() != (expected / "counts.txt").read_bytes():
        raise RuntimeError(f"{what}: counts.txt differs from the baseline's")


def measure_site_case(site: SimSite, home: Path, work: Path, case: str, place: str, env: dict,
                      service: Service | None, repeats: int, poll_s: float) -> dict:
    runs: dict[str, list[dict]] = {"baseline": [], "orch_run": [], "serve": []}
    failures: list[dict] = []
    for i in range(repeats):  # interleaved: the machine's load drifts over a run
        tag = f"{case}-{i}"
        base_dir = work / "results" / f"baseline-{tag}"
        run_dir = work / "results" / f"run-{tag}"
        ways = [("baseline", baseline.site_baseline, (site.ssh_config, place, BASELINE_WORK, env["image_path"],
                                                      env["python"], base_dir)),
                ("orch_run", cli_run, (home, f"data:{place}", run_dir))]
        if service is not None:
            ways.append(("serve", service.run, (f"data:{place}", tag, poll_s)))
        for way, measure, args in ways:
            log(f"{case} {i + 1}/{repeats}: {way}")
            try:
                run = counted(site, measure, *args)
                if way != "baseline":
                    same_result(base_dir, Path(run.get("result_dir", run_dir)), way)
                elif case == "sample" and (base_dir / "counts.txt").read_text().splitlines() != reference_counts(
                        SAMPLE):
                    raise RuntimeError("baseline: the counts are not the sample's")
            except RuntimeError as exc:  # one failed run is reported; the others still count
                log(f"{case} {i + 1}/{repeats}: {way} FAILED: {str(exc)[:3000]}")
                failures.append({"way": way, "repeat": i, "error": str(exc)[:8000]})
                if way == "baseline":
                    break  # nothing to check the others' results against
                continue
            runs[way].append(run)
    site.ssh("login", f"rm -rf -- {shlex.quote(BASELINE_WORK)}")
    result = {name: {"runs": r, "median": medians(r)} for name, r in runs.items() if r}
    return {**result, "failures": failures}


def measure_embedded(work: Path, cases: list[str], size_mb: float, repeats: int) -> dict:
    home, emb = work / "home-embedded", work / "embedded"
    emb.mkdir()
    log("deploy the minimal workflow on the embedded site")
    deployed = orch(home, "deploy", str(TOPOLOGY), "-n", DEPLOYMENT, "-i", str(embedded_site_file(emb)))
    env = job_environment(home)
    result: dict = {"deploy_s": round(deployed["wall_s"], 2)}
    for case in cases:
        source = SAMPLE if case == "sample" else emb / f"large-{size_mb:g}mb"
        if case == "large":
            log(f"make {size_mb:g} MB of text here, for the embedded site")
            baseline.make_dataset(None, str(source), size_mb)
        runs: dict[str, list[dict]] = {"baseline": [], "orch_run": []}
        for i in range(repeats):
            log(f"embedded {case} {i + 1}/{repeats}")
            base_dir = work / "results" / f"embedded-baseline-{case}-{i}"
            runs["baseline"].append(baseline.embedded_baseline(source, emb / "baseline", env["image_path"],
                                                               env["python"], base_dir))
            cli_dir = work / "results" / f"embedded-run-{case}-{i}"
            runs["orch_run"].append(cli_run(home, f"data:{source}", cli_dir))
            same_result(base_dir, cli_dir, "embedded orch run")
        result[case] = {name: {"runs": r, "median": medians(r)} for name, r in runs.items()}
        if case == "large":
            shutil.rmtree(source, ignore_errors=True)
    return result


def medians(runs: list[dict]) -> dict:
    if not runs:
        return {}
    keys = [k for k, v in runs[0].items() if isinstance(v, float | int) and k.endswith(("_s", "_n"))]
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}


# ---- report ----

def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(result: dict) -> None:
    print("Median wall seconds of one exec_job (stage in, word count job, stage out); x = against the "
          "baseline of the same site")
    print("| case | site | baseline s | orch run s | x | orch serve s | x |\n" + "| --- " * 7 + "|")
    rows = [(case, "simulated", result["site"][case]) for case in result["cases"]]
    embedded = result.get("embedded", {})
    rows += [(case, "embedded", embedded[case]) for case in result["cases"] if case in embedded]
    for case, where, ways in rows:
        base, cli, served = (ways.get(n, {}).get("median", {}).get("total_s")
                             for n in ("baseline", "orch_run", "serve"))
        print(f"| {result['case_names'][case]} | {where} | {seconds(base)} | {seconds(cli)} | {ratio(cli, base)} | "
              f"{seconds(served)} | {ratio(served, base)} |")
    labels = (("stage_in_s", "stage in"), ("job_s", "job (submit + watch)"), ("stage_out_s", "stage out"),
              ("before_execution_s", "before the execution (start, load, plan / request)"),
              ("between_operations_s", "between operations (engine)"),
              ("after_execution_s", "after the execution (until the CLI exits)"), ("total_s", "total"),
              ("ssh_connections_n", "new SSH connections, all hosts (count)"))
    for case, where, ways in rows:
        print(f"\nWhere the time goes, {result['case_names'][case]}, {where} site (median s)")
        names = [n for n in ("baseline", "orch_run", "serve") if n in ways]
        print("| phase | " + " | ".join(names) + " |\n| --- |" + " --- |" * len(names))
        for key, label in labels:
            cells = [ways[n]["median"].get(key) for n in names]
            shown = ["-" if c is None else f"{c:g}" if key.endswith("_n") else f"{c:.2f}" for c in cells]
            print(f"| {label} | " + " | ".join(shown) + " |")
        for failure in ways.get("failures", []):
            print(f"FAILED: {failure['way']}, repeat {failure['repeat'] + 1}: {failure['error'][:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="sample,large", help="sample, large (text of --size-mb MB)")
    parser.add_argument("--size-mb", type=float, default=1024, help="the large case's size (default 1024 MB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-serve", action="store_true", help="without the `orch serve` way")
    parser.add_argument("--poll-s", type=float, default=0.5, help="serve: seconds between GETs of the execution")
    parser.add_argument("--no-embedded", action="store_true", help="without the embedded site")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the site still goes down)")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if not cases or set(cases) - {"sample", "large"}:
        parser.error("--cases: sample and/or large")
    reason = unavailable_reason()
    if reason:
        log(reason)
        return 2
    lock = hold_single_run(LOCK_FILE, "run_overhead.py")  # held until exit
    if lock is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="ovh-", dir="/tmp"))  # short: ssh's ControlPath limit
    site_dir = work / "site"
    commit, changed = orch_tree(ROOT)
    result: dict = {"meta": {"site": SITE, "orch_commit": commit, "orch_uncommitted_changes": changed,
                             "repeats": args.repeats, "size_mb": args.size_mb,
                             "loadavg_start": os.getloadavg(), "started": time.time()},
                    "cases": cases, "case_names": {"sample": "sample", "large": f"{args.size_mb:g} MB"}}
    service = None
    try:
        down(SITE, site_dir)  # whatever a killed run of ours left (netns orchovh-*), as we hold the lock
        log(f"site {SITE} up in {site_dir}")
        sim_host.TMPFS_SIZE = HOST_TMPFS  # read when each host starts: this site only, in this process
        site = bring_up(SITE, site_dir, HOSTS)
        home = work / "home"
        env = deploy_on_site(site, home)
        result["meta"]["site_deploy"] = env
        places = place_datasets(site, cases, args.size_mb)
        service = None if args.no_serve else Service(site, home, work)
        result["site"] = {case: measure_site_case(site, home, work, case, places[case], env, service,
                                                   args.repeats, args.poll_s)
                          for case in cases}
        if not args.no_embedded:
            try:
                result["embedded"] = measure_embedded(work, cases, args.size_mb, args.repeats)
            except RuntimeError as exc:  # the site's figures are kept
                log(f"embedded: FAILED: {str(exc)[:3000]}")
                result["embedded_error"] = str(exc)[:8000]
    finally:
        if service is not None:
            service.stop()
        log(f"site {SITE} down")
        down(SITE, site_dir)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["meta"]["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start: {:.1f} {:.1f} {:.1f}, at end: {:.1f} {:.1f} {:.1f}\n".format(
        *result["meta"]["loadavg_start"], *result["meta"]["loadavg_end"]))
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
