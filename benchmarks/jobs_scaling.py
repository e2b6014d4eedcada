"""Many Slurm jobs in flight in one workflow, on orch's simulated site (issue 18, "Jobs"):

    python benchmarks/jobs_scaling.py [--jobs 1,10,50,200] [--job-seconds 5] [--json FILE]
        [--orch-src DIR] [--keep]
    python benchmarks/jobs_scaling.py --report FILE     # the table of an earlier --json FILE

For each N, a topology of N independent orch.nodes.SlurmJob nodes on the login host (each `sleep S`, then
`date +%s.%N` into its own done-file as the job's last action) is deployed, and its one workflow (submit,
then watch, of every job at once) run by `orch run`. The sim's single node has 2 CPUs, so at most 2 jobs run at
a time and the others wait PENDING, still in flight: N jobs take about N*S/2 seconds.

Measured for each N:
- wall time and CPU of `orch run`: user+sys of orch and all the processes it waited for (its Ansible workers
  and their forks), from wait4() on the orch process. SSH masters that ControlPersist daemonized are not in it;
- scheduler queries: slurmctld's own log with DebugFlags=Protocol (switched on at runtime with
  `scontrol setdebugflags +Protocol`, through host_exec), one "received opcode REQUEST_..." line per RPC; the
  RPCs of the cluster user (orch's) during the run, by opcode. Queries = REQUEST_JOB_USER_INFO (the shared
  `squeue -u USER` listing), REQUEST_JOB_INFO (squeue without -u) and REQUEST_JOB_INFO_SINGLE (scontrol show job);
- poll rounds: the Ansible batches of playbooks/jobs/slurm_run.yaml (Runnable.run), recorded by
  ansible_recorder.py, which patches orch's executor in orch's own process (orch's code is untouched); each
  batch's size (jobs polled: an alias's ORCH_WATCHES, when the engine polls a host's watches as one alias,
  else one per alias) from its inventory. Hence queries and CPU per poll round;
- each completion's notice delay: orch's "job ID of NODE: COMPLETED" event (its store) minus the job's own
  last timestamp (the done-file, read with host_exec), p50 and max over the N jobs (the promise: <= 2 s).
Ratios are against N=1 (or the smallest N) of the same run.

Brings up its own site, `orchjobs` (login host only, in a fresh folder under /tmp), and takes it down at the end,
also on error. Nothing in the host is read over SSH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchrun import hold_single_run, orch_tree  # noqa: E402 - the kit's modules, by their plain names

from orchestrator.sim import down, host_exec  # noqa: E402 - after the sys.path line above
from orchestrator.sim.testing import SimSite, bring_up, unavailable_reason  # noqa: E402 - after the sys.path line
from orchestrator.store.sqlite import Store  # noqa: E402 - after the sys.path line above

SITE = "orchjobs"  # never another benchmark's or test's site
LOCK_FILE = "/tmp/orchjobs.lock"
SLURMCTLD_LOG = "/var/log/slurm/slurmctld.log"
RPC = re.compile(r"slurmctld_req: received opcode (\S+) from \S+ uid (\d+)")
QUERIES = ("REQUEST_JOB_USER_INFO", "REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE")
ACCEPTED = re.compile(r"^Accepted \S+ for \S+ from \S+ port \d+")
WATCH_PLAYBOOK = "slurm_run.yaml"
ORCH_SRC = ROOT  # --orch-src: the checkout whose orch is measured


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def topology(folder: Path, jobs: int, seconds: float) -> Path:
    """N independent SlurmJob nodes on the login host and one workflow that submits and watches them all."""
    folder.mkdir(parents=True)
    done_dir = f"/orchjobs-{jobs}/done"
    text = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    login_host: { type: string }
    ssh_user: { type: string }
    ssh_port: { type: integer, default: 22 }
    ssh_key_file: { type: string }
    known_hosts_file: { type: string }
    work_dir: { type: string, default: /scratch }
  node_templates:
    login:
      type: orch.nodes.Compute
      attributes: { public_address: { get_input: login_host } }
      capabilities:
        endpoint:
          properties:
            port: { get_input: ssh_port }
            known_hosts_file: { get_input: known_hosts_file }
            credential:
              { user: { get_input: ssh_user }, token_type: private_key, token: { get_input: ssh_key_file } }
"""
    names = [f"job_{i:03d}" for i in range(1, jobs + 1)]
    for name in names:
        text += f"""\
    {name}:
      type: orch.nodes.SlurmJob
      properties:
        work_dir: {{ concat: [ {{ get_input: work_dir }}, /orchjobs-{jobs} ] }}
        job_name: orchjobs-{jobs}
        command: {{ concat: [ "mkdir -p ", {{ get_input: work_dir }}, "{done_dir}; sleep {seconds:g}; date +%s.%N > ",
                              {{ get_input: work_dir }}, "{done_dir}/$SLURM_JOB_ID" ] }}
      requirements: [ {{ host: login }} ]
"""
    text += "  workflows:\n    exec_jobs:\n      steps:\n"
    for name in names:
        text += (f"        {name}:\n          target: {name}\n          activities:\n"
                 "            - call_operation: Runnable.submit\n            - call_operation: Runnable.run\n")
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


class TreeCpu(threading.Thread):
    """Samples, every 0.2 s, the CPU used so far by a process and its descendants (from /proc): so that the
    CPU of a part of a run (its polls) can be told apart from the whole run's rusage."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.samples.append((time.time(), self.tree_cpu()))

    def tree_cpu(self) -> float:
        """Sum over the live tree of utime+stime+cutime+cstime: a finished process's time is in its parent's
        c-times once reaped, so each process counts once (processes that left the tree, e.g. daemonized SSH
        masters, do not count)."""
        parent, cpu = {}, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = sum(int(x) for x in fields[11:15]) / self.TICK
        total = 0.0
        for pid, seconds in cpu.items():
            ancestor = pid
            while ancestor not in (self.root, 0, 1) and ancestor in parent:
                ancestor = parent[ancestor]
            if ancestor == self.root:
                total += seconds
        return total

    def at(self, moment: float) -> float:
        """The tree's CPU at the last sample before `moment` (the first one if none is)."""
        before = [cpu for t, cpu in self.samples if t <= moment]
        return before[-1] if before else self.samples[0][1] if self.samples else 0.0


def orch(home: Path, *args: str, record: Path | None = None, timeout: float = 3600) -> dict:
    """One orch command as a child process; its wall time and the rusage of its whole tree (wait4)."""
    prefix = [str(ROOT / "benchmarks" / "ansible_recorder.py"), str(record), "--"] if record else \
        ["-m", "orchestrator.cli"]
    out_path, err_path = home.parent / f"{home.name}.out", home.parent / f"{home.name}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ORCH_SRC),
                                                                         os.environ.get("PYTHONPATH")]))}
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, *prefix, "--home", str(home), *args], cwd=ORCH_SRC, env=env,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        deadline = started + timeout
        sampler = TreeCpu(child.pid)
        sampler.start()
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(child.pid, signal.SIGTERM)  # our own child's session
            time.sleep(0.05)
        wall = time.monotonic() - started
        sampler.stopped.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if child.returncode != 0:
        raise RuntimeError(f"orch {' '.join(args[:2])} failed ({child.returncode}):\n{stderr[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "stdout": stdout, "stderr": stderr,
            "sampler": sampler}


def host_file_size(site: SimSite, path: str) -> int:
    return int(host_exec(site.name, "login", ["stat", "-c", "%s", path], site.directory).stdout)


def rpcs_since(site: SimSite, offset: int, uid: int) -> Counter:
    """The RPCs slurmctld received from `uid` since byte `offset` of its log, by opcode."""
    text = host_exec(site.name, "login", ["tail", "-c", f"+{offset + 1}", SLURMCTLD_LOG], site.directory).stdout
    return Counter(m.group(1) for m in RPC.finditer(text) if int(m.group(2)) == uid)


def sshd_accepted(site: SimSite, offset: int) -> int:
    with open(site.directory / "hosts" / "login" / "init.log", "rb") as f:
        f.seek(offset)
        return sum(1 for line in f.read().decode(errors="replace").splitlines() if ACCEPTED.match(line))


def done_files(site: SimSite, jobs: int) -> dict[str, float]:
    """job id -> the job's own last timestamp."""
    folder = f"{site['work_dir']}/orchjobs-{jobs}/done"
    out = host_exec(site.name, "login", ["sh", "-c", 'cd -- "$1" && grep -H . -- *', "sh", folder],
                    site.directory).stdout
    return {name: float(value) for name, value in (line.split(":", 1) for line in out.splitlines())}


def completions(home: Path, deployment: str, execution_id: str) -> dict[str, float]:
    """job id -> when orch recorded it COMPLETED."""
    store = Store(home)
    try:
        return {e.message.split()[1]: e.ts for e in store.events(deployment, execution_id)
                if e.kind == "job" and e.message.endswith(": COMPLETED")}
    finally:
        store.close()


class _InventoryLoader(yaml.SafeLoader):
    """orch's inventories mark values `!unsafe` (Ansible's tag); only their hosts are counted here."""


_InventoryLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def poll_batches(record: Path) -> list[dict]:
    """The batches of the watch playbook, each with its number of jobs (aliases in its inventory)."""
    rows = []
    lines = (record / "batches.jsonl").read_text().splitlines() if (record / "batches.jsonl").exists() else []
    for line in lines:
        batch = json.loads(line)
        if batch["playbook"].endswith(WATCH_PLAYBOOK):
            hosts = yaml.load(Path(batch["inventory"]).read_text(), _InventoryLoader)["all"]["hosts"]
            jobs = sum(len(host.get("ORCH_WATCHES") or [host]) for host in hosts.values())
            rows.append({"jobs": jobs, "aliases": len(hosts), "started": batch["started"], "ended": batch["ended"],
                         "s": round(batch["ended"] - batch["started"], 3)})
    return rows


def measure(site: SimSite, work: Path, jobs: int, seconds: float, uid: int) -> dict:
    deployment = f"jobs{jobs}"
    home = work / f"home-{jobs}"
    path = topology(work / f"topology-{jobs}", jobs, seconds)
    log(f"N={jobs}: deploy")
    orch(home, "deploy", str(path), "-n", deployment, "-i", str(site.directory / "site.yaml"))
    record = work / f"record-{jobs}"
    log_offset = host_file_size(site, SLURMCTLD_LOG)
    sshd_offset = (site.directory / "hosts" / "login" / "init.log").stat().st_size
    log(f"N={jobs}: orch run ({jobs} jobs of {seconds:g} s, 2 at a time: about {jobs * seconds / 2:.0f} s)")
    started = time.time()
    ran = orch(home, "run", deployment, record=record)
    time.sleep(0.3)  # slurmctld writes its line as it takes the RPC: let a late one land
    rpcs = rpcs_since(site, log_offset, uid)
    execution_id = ran["stdout"].split()[0]
    noticed = completions(home, deployment, execution_id)
    ended = done_files(site, jobs)
    missing = sorted(set(ended) ^ set(noticed))
    if len(noticed) != jobs or missing:
        raise RuntimeError(f"N={jobs}: {len(noticed)} COMPLETED events, {len(ended)} done-files; apart: {missing}")
    delays = sorted(noticed[j] - ended[j] for j in noticed)
    batches = poll_batches(record)
    queries = sum(rpcs[op] for op in QUERIES)
    rounds = len(batches)
    sampler: TreeCpu = ran["sampler"]
    watch_cpu = (sampler.at(max(b["ended"] for b in batches)) - sampler.at(min(b["started"] for b in batches))
                 if batches else 0.0)
    return {
        "jobs": jobs, "job_seconds": seconds, "execution": execution_id, "started": started,
        "wall_s": round(ran["wall_s"], 2), "cpu_s": round(ran["cpu_s"], 2),
        "rpcs": dict(sorted(rpcs.items())), "scheduler_queries": queries,
        "poll_rounds": rounds, "polls": sum(b["jobs"] for b in batches),
        "poll_batch_jobs": summarize([b["jobs"] for b in batches]),
        "poll_batch_s": summarize([b["s"] for b in batches]),
        "queries_per_round": round(queries / rounds, 2) if rounds else None,
        "queries_per_s": round(queries / ran["wall_s"], 2),  # over the whole run, submits included
        "watch_s": round(max(b["ended"] for b in batches) - min(b["started"] for b in batches), 2)
        if batches else 0.0,
        "watch_cpu_s": round(watch_cpu, 2), "cpu_per_round_s": round(watch_cpu / rounds, 3) if rounds else None,
        "notice_delay_s": {"p50": round(statistics.median(delays), 3), "max": round(delays[-1], 3),
                           "min": round(delays[0], 3), "over_2s": sum(1 for d in delays if d > 2)},
        "ssh_accepted_login": sshd_accepted(site, sshd_offset),
        "batches": batches,
    }


def summarize(values: list[float]) -> dict:
    if not values:
        return {}
    return {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values)}


def print_table(rows: list[dict]) -> None:
    base = rows[0]
    print(f"Slurm jobs in flight at once, one workflow (`orch run`), jobs of {base['job_seconds']:g} s; "
          f"ratios against N={base['jobs']}")
    print("| N | wall s | CPU s | watch s | watch CPU s | poll rounds | jobs/round (median) | round s (median) "
          "| job polls | scheduler queries | queries/round | queries/s | CPU s/round | x N=1 | CPU ms/job poll "
          "| notice p50 s | notice max s | > 2 s |")
    print("| --- " * 18 + "|")
    for r in rows:
        ratio = r["cpu_per_round_s"] / base["cpu_per_round_s"] if r["cpu_per_round_s"] and \
            base["cpu_per_round_s"] else float("nan")
        per_poll = 1000 * r["watch_cpu_s"] / r["polls"] if r["polls"] else float("nan")
        d = r["notice_delay_s"]
        print(f"| {r['jobs']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['watch_s']:.1f} | {r['watch_cpu_s']:.1f} "
              f"| {r['poll_rounds']} | {r['poll_batch_jobs'].get('median', '-')} "
              f"| {r['poll_batch_s'].get('median', '-')} "
              f"| {r['polls']} | {r['scheduler_queries']} | {r['queries_per_round']} | {r['queries_per_s']} "
              f"| {r['cpu_per_round_s']} | {ratio:.2f} | {per_poll:.0f} | {d['p50']:.2f} | {d['max']:.2f} "
              f"| {d['over_2s']} |")
    print("\nslurmctld RPCs of orch's user during each run, by opcode:")
    for r in rows:
        print(f"  N={r['jobs']}: " + ", ".join(f"{k} {v}" for k, v in r["rpcs"].items())
              + f"; new SSH connections to login: {r['ssh_accepted_login']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="1,10,50,200", help="comma-separated numbers of jobs")
    parser.add_argument("--job-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--orch-src", type=Path, default=ROOT, help="measure the orch of this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the site still goes down)")
    parser.add_argument("--report", type=Path, help="only print the table of an earlier run's --json file")
    args = parser.parse_args()
    if args.report:
        print_table(json.loads(args.report.read_text())["runs"])
        return 0
    global ORCH_SRC
    ORCH_SRC = args.orch_src.resolve()
    reason = unavailable_reason()
    if reason:
        log(reason)
        return 2
    lock = hold_single_run(LOCK_FILE, "jobs_scaling.py")  # held until exit
    if lock is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="oj-", dir="/tmp"))  # short: ssh's ControlPath limit
    site_dir = work / "site"
    commit, changed = orch_tree(ORCH_SRC)
    result: dict = {"meta": {"site": SITE, "orch_source": str(ORCH_SRC), "orch_commit": commit,
                             "orch_uncommitted_changes": changed,
                             "loadavg_start": os.getloadavg(), "started": time.time(),
                             "count_source": "slurmctld log, DebugFlags=Protocol"}, "runs": []}
    try:
        down(SITE, site_dir)  # whatever a killed run of ours left (netns orchjobs-*), as we hold the lock
        log(f"site {SITE} up in {site_dir}")
        site = bring_up(SITE, site_dir, ("login",))
        host_exec(SITE, "login", ["scontrol", "setdebugflags", "+Protocol"], site_dir).check_returncode()
        uid = int(host_exec(SITE, "login", ["id", "-u", site["ssh_user"]], site_dir).stdout)
        for jobs in [int(n) for n in args.jobs.split(",")]:
            row = measure(site, work, jobs, args.job_seconds, uid)
            result["runs"].append(row)
            log(f"N={jobs}: {row['wall_s']} s, {row['poll_rounds']} poll rounds, {row['scheduler_queries']} "
                f"queries, notice max {row['notice_delay_s']['max']} s")
            if args.json:  # what was measured so far survives a later failure
                args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        log(f"site {SITE} down")
        down(SITE, site_dir)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["meta"]["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start: {:.1f} {:.1f} {:.1f}, at end: {:.1f} {:.1f} {:.1f}\n".format(
        *result["meta"]["loadavg_start"], *result["meta"]["loadavg_end"]))
    print_table(result["runs"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
