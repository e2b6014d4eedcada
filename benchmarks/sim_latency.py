"""Two figures of the performance issue, measured on orch's simulated site (root, sshd, Slurm):

    python benchmarks/sim_latency.py [all|connections|latency] [--json FILE]
        [--topologies fanout,minimal] [--deploys 3]      # connections
        [--repeats 5] [--job-seconds 3]                  # latency
        [--orch-src DIR] [--keep]

connections  new SSH connections each host's sshd accepts during one `orch deploy` / `orch undeploy`
             (the promise: at most one per host). Counted from the sshd's own log: every host's sshd
             runs with -e and INFO logging into <site>/hosts/<host>/init.log, one "Accepted publickey"
             line per authenticated connection; a TCP connection that never authenticates is counted
             apart (preauth). Topologies: `fanout` (generated: on each of login, data and builder, three
             independent nodes of different types, then one depending on them: three Ansible processes
             reach each host at the same moment) and `minimal` (topologies/minimal-workflow.yaml).
latency      the time from Slurm reporting a job finished to orch recording it. A one-node SlurmJob
             (`sleep S`, then `date +%s.%N` into a file as the job's last action) runs through
             `orch run`, --repeats times. Slurm's report: a watcher inside the login host runs
             `squeue -t all` every 50 ms and notes when each job is first listed COMPLETED (the end
             of that squeue call). orch's: the timestamp of its "job N of job: COMPLETED" event in
             its store. Also shown: from the job's own last timestamp (an upper bound), and until
             `orch run` returned.

Brings up its own site, `orchbench` (in a fresh folder under /tmp), and takes it down at the end.
Everything in a host is read through nsenter (orchestrator.sim.host_exec), never over SSH, so the
measurement adds no connection of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchrun import hold_single_run, orch_tree  # noqa: E402 - the kit's modules, by their plain names

from orchestrator.sim import down, host_exec, host_pid  # noqa: E402 - after the sys.path line above
from orchestrator.sim.proc import host_env  # noqa: E402 - after the sys.path line above
from orchestrator.sim.testing import SimSite, bring_up, unavailable_reason  # noqa: E402 - after the sys.path line above
from orchestrator.store.sqlite import Store  # noqa: E402 - after the sys.path line above

SITE = "orchbench"  # never orchtest (tests/e2e) nor orchrel (tests/reliability)
HOSTS = ("login", "data", "builder")
ACCEPTED = re.compile(r"^Accepted \S+ for \S+ from \S+ port \d+")
PREAUTH = re.compile(r"^(Connection (closed|reset) by .*|kex_exchange_identification: .*)$")
JOB_NAME = "orchbench-latency"
LOCK_FILE = "/tmp/orchbench.lock"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


ORCH_SRC = ROOT  # --orch-src: the checkout whose orch is measured (its folder comes first on sys.path)


def orch(home: Path, *args: str, timeout: float = 1800) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args], cwd=ORCH_SRC,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"orch {' '.join(args[:2])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, time.monotonic() - started


# ---- SSH connections, from each host's sshd log ----

def log_offsets(site: SimSite) -> dict[str, int]:
    return {h: (site.directory / "hosts" / h / "init.log").stat().st_size for h in HOSTS}


def connections_since(site: SimSite, offsets: dict[str, int]) -> dict[str, dict[str, int]]:
    counts = {}
    for h in HOSTS:
        with open(site.directory / "hosts" / h / "init.log", "rb") as f:
            f.seek(offsets[h])
            lines = f.read().decode(errors="replace").splitlines()
        counts[h] = {"accepted": sum(1 for x in lines if ACCEPTED.match(x)),
                     "preauth": sum(1 for x in lines if PREAUTH.match(x))}
    return counts


def counted(site: SimSite, home: Path, *args: str) -> dict:
    """One orch command, with the connections every host accepted while it ran."""
    offsets = log_offsets(site)
    done, wall = orch(home, *args)
    time.sleep(0.2)  # the sshd writes its line at authentication; let a late write land
    return {"command": args[0], "wall_s": round(wall, 2), "hosts": connections_since(site, offsets),
            "stdout": done.stdout}


COMPUTE = """\
    {name}:
      type: orch.nodes.Compute
      attributes: {{ public_address: {{ get_input: {name}_host }} }}
      capabilities:
        endpoint:
          properties:
            port: {{ get_input: ssh_port }}
            known_hosts_file: {{ get_input: known_hosts_file }}
            credential:
              {{ user: {{ get_input: ssh_user }}, token_type: private_key, token: {{ get_input: ssh_key_file }} }}
"""
INPUTS = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
{hosts}    ssh_user: {{ type: string, default: root }}
    ssh_port: {{ type: integer, default: 22 }}
    ssh_key_file: {{ type: string }}
    known_hosts_file: {{ type: string }}
    work_dir: {{ type: string, default: /scratch }}
  node_templates:
"""
FILE_PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: {what} a file
      ansible.builtin.file: {{ path: "/tmp/orchbench-{{{{ NODE }}}}", state: {state} }}
"""


def fanout_topology(folder: Path) -> Path:
    """On each host: nodes a, b and c, of different types, so different batches (three Ansible processes
    reach the host at once), then d, which depends on all three. Undeploy deletes d, then a, b and c in
    one batch (one Ansible process, three aliases of each host at once)."""
    (folder / "playbooks").mkdir(parents=True)
    for name in "abcd":
        (folder / "playbooks" / f"{name}.yaml").write_text(FILE_PLAY.format(what="Touch", state="touch"))
    (folder / "playbooks" / "delete.yaml").write_text(FILE_PLAY.format(what="Remove", state="absent"))
    types = "node_types:\n" + "".join(
        f"  bench.nodes.{t.upper()}:\n    derived_from: tosca.nodes.SoftwareComponent\n"
        f"    interfaces:\n      Standard:\n        type: tosca.interfaces.node.lifecycle.Standard\n"
        f"        create: playbooks/{t}.yaml\n        delete: playbooks/delete.yaml\n" for t in "abcd")
    text = INPUTS.format(hosts="".join(f"    {h}_host: {{ type: string }}\n" for h in HOSTS))
    text = text.replace("topology_template:", types + "topology_template:", 1)
    for h in HOSTS:
        text += COMPUTE.format(name=h)
        for t in "abc":
            text += f"    {h}_{t}: {{ type: bench.nodes.{t.upper()}, requirements: [ {{ host: {h} }} ] }}\n"
        text += (f"    {h}_d: {{ type: bench.nodes.D, requirements: [ {{ host: {h} }}, {{ dependency: {h}_a }},"
                 f" {{ dependency: {h}_b }}, {{ dependency: {h}_c }} ] }}\n")
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


def measure_connections(site: SimSite, work: Path, topologies: list[str], deploys: int) -> list[dict]:
    """Each topology deployed and undeployed `deploys` times, each time from a fresh orch home."""
    site_file = str(site.directory / "site.yaml")
    rows = []
    for name in topologies:
        path = (fanout_topology(work / "fanout") if name == "fanout"
                else ORCH_SRC / "topologies" / "minimal-workflow.yaml" if name == "minimal" else Path(name))
        for i in range(deploys):
            home = work / f"home-{name.replace('/', '_')}-{i}"
            log(f"connections: deploy and undeploy {name} ({i + 1}/{deploys})")
            for row in (counted(site, home, "deploy", str(path), "-n", "conn", "-i", site_file),
                        counted(site, home, "undeploy", "conn")):
                row.pop("stdout")
                rows.append({"topology": name, "repeat": i, **row})
    return rows


# ---- job completion latency ----

LATENCY_WORKFLOW = """\
  workflows:
    exec_job:
      inputs:
        seconds: { type: float, default: 3 }
      steps:
        run_job:
          target: job
          activities:
            - call_operation: Runnable.submit
            - call_operation: Runnable.run
"""
WATCHER = """\
import json, select, subprocess, sys, time
seen = {}
while not select.select([sys.stdin], [], [], 0.05)[0]:  # until the parent closes our stdin
    before = time.time()
    out = subprocess.run(["squeue", "-h", "-t", "all", "-n", sys.argv[1], "-o", "%i %T"],
                         capture_output=True, text=True).stdout
    after = time.time()
    for line in out.splitlines():
        job, state = line.split()
        if seen.get(job) != state:
            seen[job] = state
            print(json.dumps({"job": job, "state": state, "before": before, "after": after}), flush=True)
"""


def latency_topology(folder: Path) -> Path:
    folder.mkdir(parents=True)
    text = INPUTS.format(hosts="    login_host: { type: string }\n")
    text += COMPUTE.format(name="login")
    text += f"""\
    job:
      type: orch.nodes.SlurmJob
      properties:
        work_dir: {{ concat: [ {{ get_input: work_dir }}, /orchbench-jobs ] }}
        job_name: {JOB_NAME}
        command: {{ concat: [ "sleep ", {{ get_input: seconds }},
                              "; date +%s.%N > ", {{ get_input: work_dir }}, "/orchbench-jobs/end-$SLURM_JOB_ID" ] }}
      requirements: [ {{ host: login }} ]
""" + LATENCY_WORKFLOW
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


def start_watcher(site: SimSite) -> subprocess.Popen:
    pid = host_pid(site.name, "login", site.directory)
    argv = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--",
            "/usr/bin/python3", "-u", "-c", WATCHER, JOB_NAME]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=host_env())


def stop_watcher(watcher: subprocess.Popen) -> list[dict]:
    try:  # communicate() closes the watcher's stdin: it ends at its next turn
        out, _ = watcher.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        watcher.kill()  # our own nsenter, by its PID
        out, _ = watcher.communicate()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def orch_noticed(home: Path, execution_id: str) -> tuple[str, float]:
    store = Store(home)
    try:
        for event in store.events("lat", execution_id):
            if event.kind == "job" and event.message.endswith(": COMPLETED"):
                return event.message.split()[1], event.ts
    finally:
        store.close()
    raise RuntimeError(f"no COMPLETED job event in execution {execution_id}")


def measure_latency(site: SimSite, work: Path, repeats: int, seconds: float) -> dict:
    home = work / "home-latency"
    site_file = str(site.directory / "site.yaml")
    log("latency: deploy the Slurm job topology")
    orch(home, "deploy", str(latency_topology(work / "latency")), "-n", "lat", "-i", site_file)
    watcher = start_watcher(site)
    runs = []
    try:
        time.sleep(1.0)
        for i in range(repeats):
            offsets = log_offsets(site)
            done, wall = orch(home, "run", "lat", "--set", f"seconds={seconds:g}")
            returned = time.time()
            execution_id = done.stdout.split()[0]
            job, noticed = orch_noticed(home, execution_id)
            runs.append({"execution": execution_id, "job": job, "orch_noticed": noticed, "run_returned": returned,
                         "run_wall_s": round(wall, 2), "connections": connections_since(site, offsets)})
            log(f"latency: run {i + 1}/{repeats}: job {job}")
    finally:
        seen = stop_watcher(watcher)
    for run in runs:
        completed = [s for s in seen if s["job"] == run["job"] and s["state"] == "COMPLETED"]
        if not completed:
            raise RuntimeError(f"the watcher never saw job {run['job']} COMPLETED: {seen}")
        run["slurm_reported"] = completed[0]["after"]
        run["slurm_squeue_call_s"] = round(completed[0]["after"] - completed[0]["before"], 3)
        end = host_exec(site.name, "login", ["cat", f"{site['work_dir']}/orchbench-jobs/end-{run['job']}"],
                        site.directory)
        run["job_script_end"] = float(end.stdout)
        run["latency_s"] = round(run["orch_noticed"] - run["slurm_reported"], 3)
        run["from_script_end_s"] = round(run["orch_noticed"] - run["job_script_end"], 3)
        run["slurm_lag_s"] = round(run["slurm_reported"] - run["job_script_end"], 3)
        run["until_run_returned_s"] = round(run["run_returned"] - run["slurm_reported"], 3)
    return {"job_seconds": seconds, "repeats": repeats, "runs": runs, "summary": {
        key: summarize([r[key] for r in runs])
        for key in ("latency_s", "from_script_end_s", "slurm_lag_s", "until_run_returned_s")}}


def summarize(values: list[float]) -> dict:
    return {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values)}


# ---- report ----

def print_connections(rows: list[dict]) -> None:
    print("New SSH connections accepted per host (sshd log; preauth = TCP connections that never logged in)")
    print(f"| topology | # | command | wall s | {' | '.join(HOSTS)} | preauth |")
    print("| --- | --- | --- | --- |" + " --- |" * len(HOSTS) + " --- |")
    for r in rows:
        per_host = " | ".join(str(r["hosts"][h]["accepted"]) for h in HOSTS)
        preauth = sum(r["hosts"][h]["preauth"] for h in HOSTS)
        print(f"| {r['topology']} | {r['repeat'] + 1} | {r['command']} | {r['wall_s']} | {per_host} | {preauth} |")
    over = [r for r in rows if any(c["accepted"] > 1 for c in r["hosts"].values())]
    most = max(c["accepted"] for r in rows for c in r["hosts"].values())
    print(f"most on one host in one command: {most}; commands with more than one on a host: {len(over)} of {len(rows)}")


def print_latency(result: dict) -> None:
    print(f"\nSlurm job completion noticed by orch run ({result['repeats']} runs of `sleep "
          f"{result['job_seconds']:g}`), seconds")
    print("| measure | min | median | max |\n| --- | --- | --- | --- |")
    names = {"latency_s": "Slurm reported COMPLETED -> orch's event",
             "from_script_end_s": "job script's last action -> orch's event",
             "slurm_lag_s": "job script's last action -> Slurm reported",
             "until_run_returned_s": "Slurm reported COMPLETED -> `orch run` returned"}
    for key, label in names.items():
        s = result["summary"][key]
        print(f"| {label} | {s['min']:.2f} | {s['median']:.2f} | {s['max']:.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=("all", "connections", "latency"), default="all")
    parser.add_argument("--topologies", default="fanout,minimal",
                        help="for connections: fanout, minimal or a topology file taking the site file")
    parser.add_argument("--deploys", type=int, default=3, help="for connections: deploys of each topology")
    parser.add_argument("--repeats", type=int, default=5, help="for latency: runs of the job")
    parser.add_argument("--job-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--orch-src", type=Path, default=ROOT, help="measure the orch of this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the site still goes down)")
    args = parser.parse_args()
    global ORCH_SRC
    ORCH_SRC = args.orch_src.resolve()
    reason = unavailable_reason()
    if reason:
        log(reason)
        return 2
    lock = hold_single_run(LOCK_FILE, "sim_latency.py")  # held until exit
    if lock is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="ob-", dir="/tmp"))  # short: ssh's ControlPath limit
    site_dir = work / "site"
    commit, changed = orch_tree(ORCH_SRC)
    result: dict = {"meta": {"site": SITE, "orch_source": str(ORCH_SRC), "orch_commit": commit,
                             "orch_uncommitted_changes": changed,
                             "loadavg_start": os.getloadavg(), "started": time.time()}}
    try:
        down(SITE, site_dir)  # whatever a killed run of ours left (netns orchbench-*), as we hold the lock
        log(f"site {SITE} up in {site_dir}")
        site = bring_up(SITE, site_dir, HOSTS)
        if args.what in ("all", "connections"):
            result["connections"] = measure_connections(site, work, args.topologies.split(","), args.deploys)
        if args.what in ("all", "latency"):
            result["latency"] = measure_latency(site, work, args.repeats, args.job_seconds)
    finally:
        log(f"site {SITE} down")
        down(SITE, site_dir)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["meta"]["loadavg_end"] = os.getloadavg()
    print("load average (1, 5, 15 min) at start: {:.1f} {:.1f} {:.1f}, at end: {:.1f} {:.1f} {:.1f}\n".format(
        *result["meta"]["loadavg_start"], *result["meta"]["loadavg_end"]))
    if "connections" in result:
        print_connections(result["connections"])
    if "latency" in result:
        print_latency(result["latency"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
