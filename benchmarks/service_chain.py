"""chain-10 deployed and undeployed through `orch serve`, against the floor and the orch CLI (issue 18:
"a deploy started through orch serve pays no interpreter start: on chain-10 its time is <= 1.05x the floor").

    .venv/bin/python benchmarks/service_chain.py [--repeats 5] [--nodes 10] [--json out.json] [--keep]

Three contestants, in the same run, alternating within each repeat (the order rotates between repeats):
- floor: floor.py's one ansible-playbook for the deploy and one for the undeploy (as run.py runs it);
- cli: `orch --home FRESH deploy topology.yaml -n bench` then `orch undeploy bench` (tools.Orch, as run.py);
- service: one `orch serve` started once, the topology's folder added as a registry; per repeat
  POST /api/v1/admin/deployments, GET every --poll-s until its execution is done, DELETE, GET until 404.
  Wall from the POST to the first GET that sees the execution done, and from the DELETE to the first 404.

The server runs its Ansible at nice 19 (WORKER_NICE of orchestrator/serve/app.py): on a busy machine that
slows the service alone, so the load average is recorded before and after. Ratios only; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "serve"))

import generate  # noqa: E402 - benchmarks/ is on sys.path when run as a script
import tools  # noqa: E402
from live_server import Server  # noqa: E402

REGISTRY = "bench"
WORKFLOW = "chain"
API = "/api/v1/admin/deployments"


def log(message: str) -> None:
    print(f"[service_chain {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def orch_cli(home: Path, *args: str) -> str:
    """An orch command's stdout; the token `users create` prints stays in this process, never on a log."""
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "--home", str(home), *args],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"orch {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


class Service:
    """One `orch serve` for the whole run (started once: its interpreter start is paid before measuring)."""

    name = "service"

    def __init__(self, registry: Path, root: Path, poll_s: float, timeout: float):
        self.poll_s, self.timeout = poll_s, timeout
        home = root / "serve-home"
        orch_cli(home, "registry", "add", str(registry), "--name", REGISTRY)
        token = orch_cli(home, "users", "create", "admin", "--admin").strip().splitlines()[-1]
        self.server = Server(home, root / "serve.log")
        self.server.start()
        self.client = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {token}"},
                                   timeout=30)
        self.count = 0

    def _until(self, name: str, ended) -> tuple[float, dict | None]:
        """Poll GET NAME until `ended(reply)` says so; (seconds waited, the last JSON or None for a 404)."""
        started = time.monotonic()
        while time.monotonic() - started < self.timeout:
            reply = self.client.get(f"{API}/{name}")
            shown = reply.json() if reply.status_code == 200 else None
            if ended(reply.status_code, shown):
                return time.monotonic() - started, shown
            time.sleep(self.poll_s)
        raise TimeoutError(f"deployment {name}: nothing ended within {self.timeout} s")

    def repeat(self) -> dict:
        self.count += 1
        name = f"c{self.count}"
        t0 = time.monotonic()
        started = self.client.post(API, json={"name": name, "workflow": f"{REGISTRY}/{WORKFLOW}", "inputs": {}})
        if started.status_code != 202:
            return {"ok": False, "error": f"POST: {started.status_code} {started.text[:500]}"}
        execution_id = started.json()["execution_id"]

        def deployed(_status: int, shown: dict | None) -> bool:
            execution = (shown or {}).get("execution") or {}
            # a 404 right after the POST is a deployment not stored yet: wait on (bounded by --timeout)
            return execution.get("id") == execution_id and execution.get("status") not in ("running", None)

        _, shown = self._until(name, deployed)
        deploy_s = time.monotonic() - t0
        execution = (shown or {}).get("execution") or {}
        if execution.get("status") != "done":
            return {"ok": False, "deploy_wall_s": deploy_s, "error": f"deploy: {execution}"}

        t1 = time.monotonic()
        stopped = self.client.delete(f"{API}/{name}")
        if stopped.status_code != 202:
            return {"ok": False, "deploy_wall_s": deploy_s, "error": f"DELETE: {stopped.status_code}"}

        def gone(status: int, shown: dict | None) -> bool:
            execution = (shown or {}).get("execution") or {}
            return status == 404 or execution.get("status") == "failed"

        _, shown = self._until(name, gone)
        undeploy_s = time.monotonic() - t1
        ok = shown is None
        return {"ok": ok, "deploy_wall_s": deploy_s, "undeploy_wall_s": undeploy_s,
                **({} if ok else {"error": f"undeploy: {shown}"})}

    def stop(self) -> None:
        self.client.close()
        self.server.stop()  # by its pid (terminate, then kill)


def measured(tool, work: Path) -> dict:
    """deploy + undeploy of a run.py contestant (tools.Orch or tools.FloorTool) from fresh state in `work`."""
    work.mkdir(parents=True)
    deploy = tool.deploy(work)
    undeploy = tool.undeploy(work) if deploy.ok else None
    ok = deploy.ok and (undeploy is None or undeploy.ok)
    run = {"ok": ok, "deploy_wall_s": deploy.wall_s, "undeploy_wall_s": undeploy.wall_s if undeploy else 0.0}
    if not ok:
        run["error"] = (undeploy if deploy.ok else deploy).log_tail[-2000:]
    return run


def prepare(root: Path, nodes: int) -> Path:
    """chain-N with --teardown (run.py's chain-N case with --teardown) as a registry's workflow folder."""
    folder = root / "registry" / WORKFLOW
    generated = generate.generate("chain", nodes, folder, teardown=True)
    # host-less nodes need no site file: description alone
    (folder / "workflow.yaml").write_text(f"description: chain-{nodes} of benchmarks/generate.py (service_chain)\n")
    return generated.topology


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r["ok"]]
    return statistics.median(values) if values else None


def summarize(runs: dict[str, list[dict]]) -> dict:
    result: dict = {}
    for tool, its_runs in runs.items():
        deploy, undeploy = median_of(its_runs, "deploy_wall_s"), median_of(its_runs, "undeploy_wall_s")
        total = median_of([{**r, "total": r.get("deploy_wall_s", 0) + r.get("undeploy_wall_s", 0)}
                           for r in its_runs], "total")
        result[tool] = {"n": sum(r["ok"] for r in its_runs), "deploy_wall_s": deploy, "undeploy_wall_s": undeploy,
                        "total_wall_s": total}
    floor = result["floor"]
    for tool in ("service", "cli"):
        for key in ("deploy_wall_s", "undeploy_wall_s", "total_wall_s"):
            mine, base = result[tool][key], floor[key]
            result[tool][f"x_floor_{key}"] = mine / base if mine is not None and base else None
    return result


def table(summary: dict) -> str:
    def cell(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{value:.2f}{suffix}"

    lines = ["| tool | deploy s | undeploy s | total s | deploy x floor | undeploy x floor | total x floor | n |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for tool in ("floor", "service", "cli"):
        s = summary[tool]
        lines.append(f"| {tool} | {cell(s['deploy_wall_s'])} | {cell(s['undeploy_wall_s'])} | "
                     f"{cell(s['total_wall_s'])} | {cell(s.get('x_floor_deploy_wall_s'), 'x')} | "
                     f"{cell(s.get('x_floor_undeploy_wall_s'), 'x')} | {cell(s.get('x_floor_total_wall_s'), 'x')} | "
                     f"{s['n']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=10, help="chain length (default 10: chain-10)")
    parser.add_argument("--poll-s", type=float, default=0.05, help="seconds between the service's GETs")
    parser.add_argument("--timeout", type=float, default=900, help="per deploy or undeploy, seconds")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the unmeasured first round (first Ansible start after boot is slower)")
    parser.add_argument("--json", type=Path, help="every run, the medians and the load average to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder under /tmp")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="orch-service-chain-"))
    settings = tools.Settings(workers=4, timeout=args.timeout, orch_env=tools.orch_environment(None))
    document: dict = {"meta": {"nodes": args.nodes, "repeats": args.repeats, "poll_s": args.poll_s,
                               "load_average_at_start": os.getloadavg(), "work": str(root)}}
    service = None
    try:
        topology = prepare(root, args.nodes)
        floor = tools.FloorTool(topology, settings, root / "floor")
        cli = tools.Orch(topology, settings)
        log(f"starting orch serve (work folder {root})")
        service = Service(topology.parent.parent, root, args.poll_s, args.timeout)
        contestants = {"floor": lambda work: measured(floor, work), "cli": lambda work: measured(cli, work),
                       "service": lambda work: service.repeat()}
        if args.warmup:
            log("warming up (one unmeasured round)")
            for name, run in contestants.items():
                run(root / "warmup" / name)
        runs: dict[str, list[dict]] = {name: [] for name in contestants}
        order = list(contestants)
        for i in range(args.repeats):
            for name in order[i % len(order):] + order[:i % len(order)]:
                result = contestants[name](root / f"r{i}" / name)
                log(f"repeat {i + 1}/{args.repeats} {name}: deploy {result.get('deploy_wall_s', 0):.2f} s, "
                    f"undeploy {result.get('undeploy_wall_s', 0):.2f} s{'' if result['ok'] else ' FAILED'}")
                runs[name].append(result)
        document["meta"]["load_average_at_end"] = os.getloadavg()
        document["runs"] = runs
        document["medians"] = summarize(runs)
        print(table(document["medians"]))
        print(f"load average: start {document['meta']['load_average_at_start']}, "
              f"end {document['meta']['load_average_at_end']}")
        if args.json:
            args.json.write_text(json.dumps(document, indent=2))
        return 0 if all(r["ok"] for its in runs.values() for r in its) else 1
    finally:
        if service is not None:
            service.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
