"""The minimal workflow's deploy on orch's simulated site, against the sum of its irreducible parts, and
a second deploy that changes nothing, against one plain `ansible-playbook` run of the same plays:

    python benchmarks/deploy_cost.py [--repeats-first 1] [--repeats 3] [--json FILE] [--keep]

first deploy   `orch deploy topologies/minimal-workflow.yaml` from a fresh orch home on a fresh site: wall,
               each operation's duration from orch's store, each Ansible batch's from the recorder
               (ansible_recorder.py). Then, in the same run, the parts no deploy can skip, done by hand
               with the commands orch's playbooks run: the wheelhouse (pip wheel of the kernels, as
               runtime_wheelhouse.yaml), the image's install and pack on the builder (pip install
               --target, tar -czf, as image_create.yaml), the copies (scp of the wheelhouse to login and
               builder, of the app to the builder, of the image builder -> here -> login), the image's
               unpack on login, the runtime's venv and offline install on login (runtime_install.yaml).
               Reported: deploy / their sum.
second deploy  the same command again on the same deployment: wall, and every task that reported
               changed (there should be none: each is listed with its node, operation and playbook).
               The floor: the plays that deploy ran (each batch's playbook with its own inventory, kept
               by the recorder), replayed in orch's order by one `ansible-playbook` command: a generated
               site.yml imports a copy of each playbook whose `hosts: all` names that batch's group,
               next to the original's siblings (a copy of the whole playbooks/ tree, since plays include
               ../jobs/...), with orch's Ansible environment. Reported: second deploy / floor.
               Second deploys and floor runs alternate, so that the machine's load weighs on both alike.

Brings up its own site, `orchdeploy`, in a fresh folder under /tmp, and takes it down at the end, also
on error. The remote parts by hand run inside the hosts through nsenter (no SSH of their own) except the
copies, which are scp with the site's ssh_config (a connection each, as a copy by hand would).
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
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchrun import hold_single_run, orch_tree  # noqa: E402 - the kit's modules, by their plain names

from orchestrator.executors.inventory import ansible_environment  # noqa: E402 - after the sys.path line above
from orchestrator.sim import down, host_exec  # noqa: E402 - after the sys.path line above
from orchestrator.sim.testing import SimSite, bring_up, unavailable_reason  # noqa: E402
from orchestrator.store.sqlite import Store  # noqa: E402 - after the sys.path line above

SITE = "orchdeploy"
HOSTS = ("login", "data", "builder")
NAME = "wordcount"
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
WORKFLOW = ROOT / "workflows" / "wordcount"
RECORDER = ROOT / "benchmarks" / "ansible_recorder.py"
LOCK_FILE = "/tmp/orchdeploy.lock"
FORKS = 20  # AnsibleExecutor's default, which orch deploy uses


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(argv: list[str], timeout: float = 1800, **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False, **kwargs)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}"
                           f"\n{done.stdout[-3000:]}")
    return done, wall


def deploy(site: SimSite, home: Path, record: Path) -> dict:
    """`orch deploy` through the recorder (what it gives Ansible is kept in `record`): its wall, and how
    much of it went before the first Ansible batch, into batches, between them and after the last."""
    started = time.time()
    _, wall = run([sys.executable, str(RECORDER), str(record), "--", "--home", str(home), "deploy", str(TOPOLOGY),
                   "-n", NAME, "-i", str(site.directory / "site.yaml")], cwd=ROOT)
    ran = batches(record)
    in_batches = sum(b["ended"] - b["started"] for b in ran)
    span = max(b["ended"] for b in ran) - ran[0]["started"]
    return {"wall_s": round(wall, 2), "made_of": {
        "before the first batch (start, load, plan, SSH masters)": round(ran[0]["started"] - started, 2),
        "in Ansible batches": round(in_batches, 2),
        "between batches": round(span - in_batches, 2),
        "after the last batch (until exit)": round(started + wall - max(b["ended"] for b in ran), 2)},
        "batches": [{"playbook": Path(b["playbook"]).name, "rc": b["rc"],
                     "seconds": round(b["ended"] - b["started"], 2)} for b in ran]}


def batches(record: Path) -> list[dict]:
    lines = (record / "batches.jsonl").read_text().splitlines()
    return sorted((json.loads(x) for x in lines), key=lambda b: b["started"])


# ---- what orch's store says of the last install ----

def last_install(home: Path) -> dict:
    """The steps of the last deploy (install workflow) and the tasks that reported changed."""
    store = Store(home)
    try:
        execution = [e for e in store.executions(NAME) if e.workflow == "install"][-1]
        steps = [{"node": r.node, "operation": r.operation, "step": r.step_id,
                  "seconds": round((r.ended or r.started) - r.started, 2)}
                 for r in store.operation_runs(NAME, execution.id)]
        events = [e for e in store.events(NAME, execution.id) if e.kind == "task"]
        started = {r.step_id: r.started for r in store.operation_runs(NAME, execution.id)}
    finally:
        store.close()
    changed = [{"node": e.node, "operation": e.operation, "task": (e.data or {}).get("task"),
                "step": (e.data or {}).get("step")} for e in events if (e.data or {}).get("status") == "changed"]
    tasks, last = [], dict(started)
    for e in events:  # a task's time: from the previous result of its operation (or its start) to its own
        step = (e.data or {}).get("step")
        tasks.append({"node": e.node, "task": (e.data or {}).get("task"), "status": (e.data or {}).get("status"),
                      "seconds": round(e.ts - last.get(step, e.ts), 2)})
        last[step] = e.ts
    return {"execution": execution.id, "started": execution.started,
            "seconds": round((execution.ended or 0) - execution.started, 2),
            "steps": steps, "changed": changed, "tasks": tasks}


class _Tagged(yaml.SafeLoader):
    """Reads orch's inventories, whose values carry `!unsafe`, as plain text."""


_Tagged.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def aliases_of(inventory: Path) -> list[str]:
    return list(yaml.load(inventory.read_text(), Loader=_Tagged)["all"]["hosts"])


def playbook_of_steps(record: Path) -> dict[str, str]:
    """Inventory alias -> the playbook its batch ran (aliases are op_<step id>)."""
    return {alias: b["playbook"] for b in batches(record) for alias in aliases_of(Path(b["inventory"]))}


# ---- the floor: the same plays, one ansible-playbook ----

HOSTS_ALL = re.compile(r"^(\s*(?:-\s+)?)hosts:\s*all\s*$", re.MULTILINE)


def replay_files(record: Path, folder: Path) -> list[str]:
    """site.yml and inventories that run the recorded batches in order, each on its own aliases only."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "playbooks"
    if not copy.exists():
        shutil.copytree(ROOT / "playbooks", copy)
    imports, groups, inventories = [], {}, []
    for i, batch in enumerate(batches(record)):
        playbook = Path(batch["playbook"])
        try:
            place = copy / playbook.parent.relative_to(ROOT / "playbooks")
        except ValueError:  # a playbook of the topology's own: its folder, copied once
            place = folder / f"own-{i:03d}"
            shutil.copytree(playbook.parent, place, dirs_exist_ok=True)
        text, plays = HOSTS_ALL.subn(rf"\1hosts: batch_{i:03d}", playbook.read_text())
        if plays == 0:
            raise RuntimeError(f"{playbook}: no play on `hosts: all` to narrow to its batch")
        target = place / f".replay-{i:03d}-{playbook.name}"
        target.write_text(text)
        imports.append({"import_playbook": str(target)})
        groups[f"batch_{i:03d}"] = {"hosts": dict.fromkeys(aliases_of(Path(batch["inventory"])))}
        inventories += ["-i", batch["inventory"]]
    (folder / "groups.yaml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    (folder / "site.yml").write_text(yaml.safe_dump(imports, sort_keys=False))
    return [*inventories, "-i", str(folder / "groups.yaml"), str(folder / "site.yml")]


TIMES_CALLBACK = """\
import json, os, time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "replay_times"
    CALLBACK_NEEDS_ENABLED = True

    def _note(self, result, status):
        with open(os.environ["REPLAY_TIMES"], "a") as out:
            out.write(json.dumps({"task": result._task.get_name(), "status": status, "ts": time.time()}) + "\\n")

    def v2_runner_on_ok(self, result):
        self._note(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_skipped(self, result):
        self._note(result, "skipped")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._note(result, "failed")
"""
TASK_LINE = re.compile(r"^TASK \[(.*)\] \*+$")
CHANGED_LINE = re.compile(r"^changed: \[([^\]]+)\]")
RECAP_LINE = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)")


def floor(record: Path, folder: Path) -> dict:
    """One `ansible-playbook` run of the recorded plays: wall, and what it reported changed."""
    args = replay_files(record, folder)
    control = tempfile.mkdtemp(prefix="od-cp-", dir="/tmp")  # short: ssh's ControlPath limit
    (folder / "callbacks").mkdir(exist_ok=True)
    (folder / "callbacks" / "replay_times.py").write_text(TIMES_CALLBACK)
    times = folder / "times.jsonl"
    times.unlink(missing_ok=True)
    env = {**os.environ, **ansible_environment(control, FORKS), "REPLAY_TIMES": str(times),
           "ANSIBLE_CALLBACK_PLUGINS": str(folder / "callbacks"), "ANSIBLE_CALLBACKS_ENABLED": "replay_times"}
    try:
        started = time.time()
        done, wall = run([str(Path(sys.executable).with_name("ansible-playbook")), *args], env=env, cwd=folder)
    finally:
        for socket_path in Path(control).glob("*"):  # the SSH masters this run left: ours alone
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "x"], capture_output=True,
                           timeout=10, check=False, stdin=subprocess.DEVNULL)
        shutil.rmtree(control, ignore_errors=True)
    task, changed = None, []
    for line in done.stdout.splitlines():
        if m := TASK_LINE.match(line):
            task = m.group(1)
        elif m := CHANGED_LINE.match(line):
            changed.append({"task": task, "host": m.group(1)})
    recap = sum(int(m.group(2)) for line in done.stdout.splitlines() if (m := RECAP_LINE.match(line)))
    tasks, last = [], started
    for line in times.read_text().splitlines():  # a task's time: from the previous result to its own
        note = json.loads(line)
        tasks.append({"task": note["task"], "status": note["status"], "seconds": round(note["ts"] - last, 2)})
        last = note["ts"]
    return {"wall_s": round(wall, 2), "changed": changed, "recap_changed": recap, "tasks": tasks}


# ---- the irreducible parts, by hand ----

def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return round(time.monotonic() - started, 2)


def in_host(site: SimSite, host: str, script: str, *args: str) -> None:
    """A shell script inside a host (root, nsenter): values reach it as arguments, never as its text."""
    done = host_exec(site.name, host, ["sh", "-c", script, "sh", *args], site.directory, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"on {host}: {script!r} failed: {done.stderr[-2000:]}")


def scp(site: SimSite, *paths: str) -> None:
    run(["scp", "-q", "-r", "-F", str(site.ssh_config), *paths], timeout=600)


def hand_parts(site: SimSite, home: Path, work: Path) -> dict[str, float]:
    """Each part a deploy cannot skip, timed alone, in the order the deploy does them."""
    (wheelhouse,) = [p for p in home.rglob("wheelhouse-*") if p.is_dir() and not p.name.endswith((".tmp", ".src"))]
    outputs = json.loads(run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), "outputs", NAME,
                              "--json"], cwd=ROOT)[0].stdout)
    image_name = Path(outputs["image_path"]).name
    image_file = f"{site['build_dir']}/{image_name}.tar.gz"
    hand = work / "hand"
    hand.mkdir()
    on_login, on_builder = f"{site['work_dir']}/orchdeploy-hand", f"{site['build_dir']}/orchdeploy-hand"
    parts: dict[str, float] = {}
    requirements = [x for x in (WORKFLOW / "requirements.txt").read_text().splitlines()
                    if x.strip() and not x.strip().startswith("#")]
    try:
        parts["wheelhouse: pip wheel of the kernels (controller)"] = timed(lambda: (
            shutil.copytree(WORKFLOW / "kernels", hand / "src"),
            run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(hand / "wheelhouse"),
                 str(hand / "src")]),
            requirements and run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "-d",
                                  str(hand / "wheelhouse"), "-r", str(WORKFLOW / "requirements.txt")])))
        parts["copy: wheelhouse -> login (scp)"] = timed(lambda: scp(site, str(wheelhouse), f"login:{on_login}"))
        parts["runtime: venv and pip install --no-index (login)"] = timed(lambda: in_host(site, "login", (
            '/usr/bin/python3 -m venv "$1/venv" && "$1/venv/bin/python" -m pip install --quiet --no-index '
            '--disable-pip-version-check --find-links "$1" "$1"/*.whl'), on_login))
        parts["copy: wheelhouse and app -> builder (scp)"] = timed(lambda: (
            scp(site, str(wheelhouse), f"builder:{on_builder}"), scp(site, str(WORKFLOW / "app"),
                                                                      f"builder:{on_builder}/app")))
        parts["image: builder venv, python -m venv (builder; once per builder)"] = timed(lambda: in_host(
            site, "builder", '/usr/bin/python3 -m venv "$1/builder-venv"', on_builder))
        parts["image: pip install --target, app (builder)"] = timed(lambda: in_host(site, "builder", (
            '"$1/builder-venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check '
            '--find-links "$1" --target "$1/tree/site-packages" "$1"/*.whl && cp -a "$1/app" "$1/tree/app"'),
            on_builder))
        parts["image: pack, tar -czf (builder)"] = timed(lambda: in_host(
            site, "builder", 'tar -czf "$1/image.tar.gz" -C "$1/tree" .', on_builder))
        parts["copy: image builder -> controller -> login (scp)"] = timed(lambda: (
            scp(site, f"builder:{image_file}", str(hand / "image.tar.gz")),
            scp(site, str(hand / "image.tar.gz"), f"login:{on_login}.tar.gz")))
        parts["image: unpack, tar -xzf (login)"] = timed(lambda: in_host(
            site, "login", 'mkdir -p "$1/image" && tar -xzf "$1.tar.gz" --no-same-owner -C "$1/image"', on_login))
    finally:
        in_host(site, "login", 'rm -rf -- "$1" "$1.tar.gz"', on_login)
        in_host(site, "builder", 'rm -rf -- "$1"', on_builder)
    return parts


# ---- the run ----

def measure(site: SimSite, work: Path, repeats_first: int, repeats: int) -> dict:
    scp(site, str(WORKFLOW / "data" / "sample"), "data:/data/")  # the dataset, as the e2e test has it
    first = []
    for i in range(repeats_first):
        home, record = work / f"home-{i}", work / f"record-first-{i}"
        if i:  # a first deploy again: the previous one's deployment goes first
            run([sys.executable, "-m", "orchestrator.cli", "--home", str(work / f"home-{i - 1}"), "undeploy", NAME],
                cwd=ROOT)
        log(f"first deploy {i + 1}/{repeats_first}")
        first.append({**deploy(site, home, record), **last_install(home)})
    log("the irreducible parts, by hand")
    parts = hand_parts(site, home, work)
    second, floors = [], []
    for i in range(repeats):
        record = work / f"record-second-{i}"
        log(f"second deploy {i + 1}/{repeats}")
        measured = deploy(site, home, record)
        installed = last_install(home)
        where = playbook_of_steps(record)
        for task in installed["changed"]:
            task["playbook"] = where.get("op_" + re.sub(r"[^A-Za-z0-9_]", "_", task["step"] or ""))
        second.append({**measured, **installed})
        log(f"floor: the same plays, one ansible-playbook {i + 1}/{repeats}")
        floors.append(floor(work / "record-second-0", work / "replay"))
    parts_sum = round(sum(parts.values()), 2)
    plays = {tuple(b["playbook"] for b in r["batches"]) for r in second}
    first_wall = statistics.median(r["wall_s"] for r in first)
    second_wall = statistics.median(r["wall_s"] for r in second)
    floor_wall = statistics.median(r["wall_s"] for r in floors)
    return {"first": first, "parts": parts, "parts_sum_s": parts_sum, "second": second, "floor": floors,
            "summary": {"first_deploy_s": first_wall, "parts_sum_s": parts_sum,
                        "first_over_parts": round(first_wall / parts_sum, 2),
                        "second_deploy_s": second_wall, "floor_s": floor_wall,
                        "second_over_floor": round(second_wall / floor_wall, 2),
                        "second_changed_tasks": max(len(r["changed"]) for r in second),
                        "same_plays_each_second_deploy": len(plays) == 1}}


def median_made_of(runs: list[dict]) -> dict[str, float]:
    return {k: round(statistics.median(r["made_of"][k] for r in runs), 2) for k in runs[0]["made_of"]}


def task_medians(runs: list[dict]) -> dict[str, float]:
    """Each task's median time over the runs (a task that ran in several operations: their sum)."""
    per_run = []
    for r in runs:
        total: dict[str, float] = {}
        for t in r["tasks"]:
            total[t["task"]] = total.get(t["task"], 0) + t["seconds"]
        per_run.append(total)
    names = dict.fromkeys(name for totals in per_run for name in totals)
    return {n: round(statistics.median(t.get(n, 0) for t in per_run), 2) for n in names}


def report(result: dict) -> None:
    s = result["summary"]
    print("First deploy (median of {}): {:.2f} s; its irreducible parts by hand, s:".format(
        len(result["first"]), s["first_deploy_s"]))
    print("| part | s |\n| --- | --- |")
    for name, seconds in result["parts"].items():
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **sum** | **{s['parts_sum_s']:.2f}** |")
    print(f"deploy / sum of parts: **{s['first_over_parts']:.2f}x**\n")
    last = result["first"][-1]
    print("First deploy: its operations (orch's store; those without a playbook left out) and batches, s:")
    print("| operation | s |\n| --- | --- |")
    for step in last["steps"]:
        if step["seconds"] >= 0.05:
            print(f"| {step['node']} {step['operation']} | {step['seconds']:.2f} |")
    for b in last["batches"]:
        print(f"| batch {b['playbook']} | {b['seconds']:.2f} |")
    tasks = task_medians(result["first"])
    print("\nFirst deploy's slowest tasks (median; a task's time runs from the previous result of its operation), s:")
    print("| task | s |\n| --- | --- |")
    for name, seconds in sorted(tasks.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| {name} | {seconds:.2f} |")
    print(f"| all {len(tasks)} tasks | {sum(tasks.values()):.2f} |")
    print("\nSecond deploy, nothing changed (medians):")
    print("| measure | value |\n| --- | --- |")
    print(f"| second deploy s ({len(result['second'])} runs) | {s['second_deploy_s']:.2f} |")
    print(f"| floor: one ansible-playbook of the same plays, s | {s['floor_s']:.2f} |")
    print(f"| second / floor (target <= 1.3) | **{s['second_over_floor']:.2f}x** |")
    print(f"| changed tasks, orch (most in one run; target 0) | {s['second_changed_tasks']} |")
    print(f"| changed tasks, floor (recap) | {max(f['recap_changed'] for f in result['floor'])} |")
    print("\nWhat each deploy's wall is made of (medians), s:")
    print("| part | first deploy | second deploy |\n| --- | --- | --- |")
    first, second = median_made_of(result["first"]), median_made_of(result["second"])
    for key in first:
        print(f"| {key} | {first[key]:.2f} | {second[key]:.2f} |")
    orch_tasks, floor_tasks = task_medians(result["second"]), task_medians(result["floor"])
    print("\nSecond deploy's slowest tasks against the floor's same tasks (medians; a task's time runs from "
          "the previous result), s:")
    print("| task | orch | floor |\n| --- | --- | --- |")
    for name, seconds in sorted(orch_tasks.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| {name} | {seconds:.2f} | {floor_tasks.get(name, 0):.2f} |")
    print(f"| all tasks | {sum(orch_tasks.values()):.2f} | {sum(floor_tasks.values()):.2f} |")
    for r in result["second"]:
        for task in r["changed"]:
            print(f"CHANGED on a second deploy: {task['node']} {task['operation']}: task {task['task']!r} "
                  f"({task['playbook']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats-first", type=int, default=1, help="first deploys (undeployed in between)")
    parser.add_argument("--repeats", type=int, default=3, help="second deploys, and as many floor runs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (the site still goes down)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        log(reason)
        return 2
    lock = hold_single_run(LOCK_FILE, "deploy_cost.py")  # held until exit
    if lock is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="od-", dir="/tmp"))  # short: ssh's ControlPath limit
    site_dir = work / "site"
    commit, _ = orch_tree(ROOT)
    meta = {"site": SITE, "orch_commit": commit, "loadavg_start": os.getloadavg(), "started": time.time()}
    try:
        down(SITE, site_dir)  # whatever a killed run of ours left, as we hold the lock
        log(f"site {SITE} up in {site_dir}")
        site = bring_up(SITE, site_dir, HOSTS)
        result = {"meta": meta, **measure(site, work, args.repeats_first, args.repeats)}
    finally:
        log(f"site {SITE} down")
        down(SITE, site_dir)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    meta["loadavg_end"] = os.getloadavg()
    print("load average at start: {:.1f} {:.1f} {:.1f}, at end: {:.1f} {:.1f} {:.1f}\n".format(
        *meta["loadavg_start"], *meta["loadavg_end"]))
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
