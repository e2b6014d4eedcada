"""scaling.py hosts: `orch deploy` of one node per host on simulated sites of growing size.

For each N: a fresh site `orchscale` of N hosts (login, which Slurm needs, and plain hosts c01..),
a generated topology with, on each host, one Compute and one node whose create and delete are a real
Ansible task (touch / remove a file), deployed and undeployed --repeats times from fresh orch homes.
Reported: the median deploy wall time per N, its ratio to the smallest N, and the new SSH
connections each host's sshd accepted during each deploy (its "Accepted publickey" log lines).

Beside each deploy, in the same conditions, the floor: the same create play over the same hosts as ONE
plain `ansible-playbook` run (the same SSH settings orch gives Ansible: host keys checked, pipelining,
ControlPersist, a fresh control folder so that it opens its own connections; orch's forks). Its own
growth from the smallest N is what the machine does with more hosts whatever the orchestrator: each
host's module run is a Python on the simulated host, which shares the controller's cores.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from floor import ansible_playbook
from sim_latency import ACCEPTED, COMPUTE, INPUTS, PREAUTH, log, orch

from orchestrator.executors.inventory import Target, ansible_environment, connection_vars
from orchestrator.sim import SimError, down, status
from orchestrator.sim.testing import SimSite, bring_up

SITE = "orchscale"  # never orchtest, orchrel, orchbench: other people's sites
GROW_STEP = 5  # hosts booted per `up` when a whole site at once does not come up (see bring_up_site)
ORCH_FORKS = 20  # orch's AnsibleExecutor default: the floor runs with the same

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: {what} a file
      ansible.builtin.file: {{ path: "/tmp/orchscale-{{{{ NODE }}}}", state: {state} }}
"""
TYPES = """\
node_types:
  scale.nodes.Touch:
    derived_from: tosca.nodes.SoftwareComponent
    interfaces:
      Standard:
        type: tosca.interfaces.node.lifecycle.Standard
        create: playbooks/create.yaml
        delete: playbooks/delete.yaml
"""


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process: others' too), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def host_names(count: int) -> list[str]:
    return ["login"] + [f"c{i:02d}" for i in range(1, count)]


def one_node_per_host(folder: Path, hosts: list[str]) -> Path:
    """On each host its Compute and one scale.nodes.Touch; all Touch nodes share their playbooks, so
    orch may run each operation of all of them as one batch (one Ansible process for every host)."""
    (folder / "playbooks").mkdir(parents=True)
    (folder / "playbooks" / "create.yaml").write_text(PLAY.format(what="Touch", state="touch"))
    (folder / "playbooks" / "delete.yaml").write_text(PLAY.format(what="Remove", state="absent"))
    text = INPUTS.format(hosts="".join(f"    {h}_host: {{ type: string }}\n" for h in hosts))
    text = text.replace("topology_template:", TYPES + "topology_template:", 1)
    for h in hosts:
        text += COMPUTE.format(name=h)
        text += f"    {h}_app: {{ type: scale.nodes.Touch, requirements: [ {{ host: {h} }} ] }}\n"
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


def bring_up_site(directory: Path, hosts: list[str]) -> tuple[SimSite, str | None]:
    """The site with all its hosts; when booting them all at once fails (the sim gives every boot
    together one timeout), the error, and the site grown GROW_STEP hosts per `up` instead."""
    try:
        return bring_up(SITE, directory, hosts), None
    except SimError as exc:  # bring_up took the half-made site down
        error = str(exc).splitlines()[0]
        log(f"hosts: {len(hosts)} hosts at once failed ({error}); growing {GROW_STEP} per up")
    for end in range(min(GROW_STEP, len(hosts)), len(hosts) + GROW_STEP, GROW_STEP):
        site = bring_up(SITE, directory, hosts[:end])
    return site, error


def floor_inventory(site: SimSite, addresses: dict[str, str], hosts: list[str], path: Path) -> Path:
    """Each host once, reached exactly as orch reaches it (orch's own connection variables), with the
    variable the play reads (NODE, as orch's operations have it)."""
    entries = {}
    for h in hosts:
        target = Target(name=h, address=addresses[h], user=site["ssh_user"], port=site.values.get("ssh_port"),
                        key_file=site["ssh_key_file"],
                        known_hosts_file=site["known_hosts_file"])
        entries[h] = {**connection_vars(target), "NODE": f"{h}_app"}
    path.write_text(yaml.safe_dump({"all": {"hosts": entries}}))
    return path


def run_floor(inventory: Path, playbook: Path) -> float:
    """One `ansible-playbook` of the play, its own SSH masters (ended afterwards, not timed)."""
    control_dir = tempfile.mkdtemp(prefix="osf-", dir="/tmp")  # short: ssh's ControlPath limit
    env = {**os.environ, **ansible_environment(control_dir, ORCH_FORKS)}
    try:
        began = time.monotonic()
        ran = subprocess.run([ansible_playbook(), "-i", str(inventory), str(playbook)], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False)
        took = time.monotonic() - began
        if ran.returncode != 0:
            raise RuntimeError(f"the floor's ansible-playbook failed ({ran.returncode}): {ran.stdout[-2000:]}")
        return took
    finally:
        for socket_path in Path(control_dir).glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "floor"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
        shutil.rmtree(control_dir, ignore_errors=True)


def log_offsets(site: SimSite, hosts: list[str]) -> dict[str, int]:
    return {h: (site.directory / "hosts" / h / "init.log").stat().st_size for h in hosts}


def accepted_since(site: SimSite, offsets: dict[str, int]) -> dict[str, dict[str, int]]:
    counts = {}
    for h, offset in offsets.items():
        with open(site.directory / "hosts" / h / "init.log", "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        counts[h] = {"accepted": sum(1 for x in lines if ACCEPTED.match(x)),
                     "preauth": sum(1 for x in lines if PREAUTH.match(x))}
    return counts


def measure_size(work: Path, count: int, repeats: int) -> dict:
    hosts = host_names(count)
    folder = work / f"n{count}"
    site_dir = folder / "site"
    log(f"hosts: site {SITE} with {count} hosts in {site_dir}")
    down(SITE, site_dir)
    began = time.monotonic()
    try:
        site, boot_error = bring_up_site(site_dir, hosts)
        up_s = time.monotonic() - began
        addresses = {h: v["address"] for h, v in status(SITE, site_dir)["hosts"].items()}
        topology = one_node_per_host(folder / "topology", hosts)
        sets = [arg for h in hosts for arg in ("--set", f"{h}_host={addresses[h]}")]
        inventory = floor_inventory(site, addresses, hosts, folder / "floor-inventory.yaml")
        playbooks = topology.parent / "playbooks"
        runs = []
        for i in range(repeats):
            home = folder / f"home-{i}"
            offsets = log_offsets(site, hosts)
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            machine_before = machine_cpu_s()
            _, deploy_s = orch(home, "deploy", str(topology), "-n", "scale", "-i", str(site.directory / "site.yaml"),
                               *sets)
            machine_s = machine_cpu_s() - machine_before
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            orch_cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
            time.sleep(0.2)  # the sshd writes its line at authentication; let a late write land
            deployed = accepted_since(site, offsets)
            offsets = log_offsets(site, hosts)
            _, undeploy_s = orch(home, "undeploy", "scale")
            time.sleep(0.2)
            floor_s = run_floor(inventory, playbooks / "create.yaml")
            floor_undeploy_s = run_floor(inventory, playbooks / "delete.yaml")
            runs.append({"deploy_s": round(deploy_s, 2), "floor_deploy_s": round(floor_s, 2),
                         "floor_undeploy_s": round(floor_undeploy_s, 2), "deploy_orch_cpu_s": round(orch_cpu_s, 2),
                         "deploy_machine_cpu_s": round(machine_s, 2), "undeploy_s": round(undeploy_s, 2),
                         "deploy_connections": deployed, "undeploy_connections": accepted_since(site, offsets)})
            log(f"hosts: N={count} repeat {i + 1}/{repeats}: deploy {deploy_s:.1f} s (floor {floor_s:.1f} s), "
                f"undeploy {undeploy_s:.1f} s (floor {floor_undeploy_s:.1f} s)")
    finally:
        down(SITE, site_dir)
    return {"hosts": count, "site_up_s": round(up_s, 1), "boot_all_at_once_error": boot_error, "runs": runs,
            **summary(runs)}


def summary(runs: list[dict]) -> dict:
    per_host = [c["accepted"] for r in runs for c in r["deploy_connections"].values()]
    totals = [sum(c["accepted"] for c in r["deploy_connections"].values()) for r in runs]
    deploy_s = statistics.median(r["deploy_s"] for r in runs)
    floor_s = statistics.median(r["floor_deploy_s"] for r in runs)
    return {"deploy_median_s": round(deploy_s, 2), "floor_deploy_median_s": round(floor_s, 2),
            "deploy_x_floor": round(deploy_s / floor_s, 2),
            "floor_undeploy_median_s": round(statistics.median(r["floor_undeploy_s"] for r in runs), 2),
            "deploy_orch_cpu_median_s": round(statistics.median(r["deploy_orch_cpu_s"] for r in runs), 2),
            "deploy_machine_cpu_median_s": round(statistics.median(r["deploy_machine_cpu_s"] for r in runs), 2),
            "undeploy_median_s": round(statistics.median(r["undeploy_s"] for r in runs), 2),
            "deploy_connections_max_per_host": max(per_host), "deploy_connections_total_max": max(totals),
            "undeploy_connections_max_per_host": max(c["accepted"] for r in runs
                                                     for c in r["undeploy_connections"].values()),
            "preauth_total": sum(c["preauth"] for r in runs for key in ("deploy_connections", "undeploy_connections")
                                 for c in r[key].values())}


def measure(counts: list[int], repeats: int, keep: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="osc-", dir="/tmp"))  # short: ssh's ControlPath limit
    sizes, failure = [], None
    try:
        for count in counts:
            try:
                sizes.append(measure_size(work, count, repeats))
            except (SimError, RuntimeError) as exc:
                failure = {"hosts": count, "error": str(exc)[-3000:]}
                log(f"hosts: N={count} failed: {exc}")
                break
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    base = sizes[0]["deploy_median_s"] if sizes else None
    floor_base = sizes[0]["floor_deploy_median_s"] if sizes else None
    for size in sizes:
        size["deploy_x_smallest"] = round(size["deploy_median_s"] / base, 2)
        size["floor_x_smallest"] = round(size["floor_deploy_median_s"] / floor_base, 2)
    return {"repeats": repeats, "sizes": sizes, "failure": failure,
            "largest_that_works": sizes[-1]["hosts"] if sizes else None}


def print_table(result: dict) -> None:
    print(f"One node per host, `orch deploy` on site {SITE} (median of {result['repeats']})")
    print("| hosts | site up s | deploy s | x smallest | floor s | floor x smallest | deploy x floor | orch CPU s "
          "| machine CPU s | undeploy s | SSH conn. per host (max) | total (max) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in result["sizes"]:
        print(f"| {s['hosts']} | {s['site_up_s']} | {s['deploy_median_s']} | {s['deploy_x_smallest']} | "
              f"{s['floor_deploy_median_s']} | {s['floor_x_smallest']} | {s['deploy_x_floor']} | "
              f"{s['deploy_orch_cpu_median_s']} | {s['deploy_machine_cpu_median_s']} | {s['undeploy_median_s']} | "
              f"{s['deploy_connections_max_per_host']} | {s['deploy_connections_total_max']} |")
    for s in result["sizes"]:
        if s["boot_all_at_once_error"]:
            print(f"N={s['hosts']}: booting all hosts at once failed ({s['boot_all_at_once_error']}); "
                  f"grown {GROW_STEP} hosts per up")
    if result["failure"]:
        print(f"N={result['failure']['hosts']} failed: {result['failure']['error'][-500:]}")
