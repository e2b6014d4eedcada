"""Load on `orch serve` where users wait: N concurrent clients polling an execution's status and following
its log (JSON from an offset, as the web page does) while M executions run on the embedded site.

    .venv/bin/python benchmarks/serve_load.py [--clients 50] [--executions 10] [--seconds 60] [--json out.json]

Reports p50/p90/p99/max latency per kind of request, errors, requests per second, and the server's CPU
(its own process, and with its children: the Ansible workers) and peak memory. Loopback only; the
server, its home and its deployments are made in a temporary folder and removed. Each execution runs on
a deployment of its own (a deployment runs one execution at a time): M copies of the jobs topology.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "serve"))

from live_server import Server  # noqa: E402 - after the sys.path lines above

from orchestrator.api import Orchestrator  # noqa: E402

JOBS = ROOT / "tests" / "integration" / "data" / "jobs.yaml"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU, with its waited-for children), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / TICKS, (utime + stime + cutime + cstime) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def prepare(home: Path, work: Path, executions: int) -> str:
    api = Orchestrator(home, workers=4)
    for i in range(executions):
        out = work / f"out{i}"
        out.mkdir(parents=True)
        result = api.deploy(f"jobs{i}", str(JOBS), {"out_dir": str(out)})
        assert result.outcome.ok, result.outcome.failures
        api.expose(f"jobs{i}", "exec_job", f"jobs{i}@local@exec_job")
    token = api.create_user("load")
    api.close()
    return token


def run(clients: int, executions: int, seconds: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="orch-serve-load-"))
    try:
        home = work / "home"
        print(f"deploying {executions} copies of the jobs topology ...", file=sys.stderr)
        token = prepare(home, work, executions)
        server = Server(home, work / "serve.log")
        server.start()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            return _load(server, headers, clients, executions, seconds)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load(server: Server, headers: dict, clients: int, executions: int, seconds: float) -> dict:
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as web:
        ids = []
        for i in range(executions):
            started = web.post("/api/v1/executions", json={"workflow": f"jobs{i}@local@exec_job",
                                                            "inputs": {"message": f"run {i}", "sleep_a": 5}})
            started.raise_for_status()
            ids.append(started.json()["id"])
    latencies: dict[str, list[float]] = {"status": [], "logs": []}
    in_server: list[float] = []  # the server's own time per reply (its Server-Timing header)
    slowest: list[tuple[float, float, str]] = []  # (latency, seconds since the start, kind): where the tail lies
    errors: list[str] = []
    lock = threading.Lock()
    phases = random.Random(17)
    began_at = time.monotonic()
    stop = began_at + seconds
    cpu_before = cpu_seconds(server.process.pid)
    client_cpu_before = time.process_time()
    host, port = httpx.URL(server.url).host, httpx.URL(server.url).port
    peak_rss = [rss_mb(server.process.pid)]

    def client(number: int) -> None:
        execution_id, after = ids[number % len(ids)], 0
        # users open their pages at different moments: without a phase of its own each, all 50 would poll in
        # the same instant every half second, a burst no set of independent users makes
        time.sleep(phases.uniform(0, 0.5))
        # http.client, not httpx: the clients share the server's two cores here, and a lighter client leaves
        # them to the server (real users' browsers are elsewhere); the client's own CPU is reported
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            while time.monotonic() < stop:
                for kind, path in (("status", f"/api/v1/executions/{execution_id}"),
                                   ("logs", f"/api/v1/executions/{execution_id}/logs?after={after}")):
                    began = time.perf_counter()
                    try:
                        connection.request("GET", path, headers=headers)
                        reply = connection.getresponse()
                        body = reply.read()
                        took = time.perf_counter() - began
                        if reply.status != 200:
                            raise RuntimeError(f"{reply.status} {body[:200]!r}")
                        if kind == "logs":
                            events = json.loads(body)
                            if events:
                                after = events[-1]["id"]
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        with lock:
                            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                        connection.close()
                        connection = http.client.HTTPConnection(host, port, timeout=30)
                        continue
                    timing = reply.getheader("server-timing", "")
                    with lock:
                        latencies[kind].append(took)
                        slowest.append((took, time.monotonic() - began_at, kind))
                        if timing.startswith("app;dur="):
                            in_server.append(float(timing[len("app;dur="):]) / 1000)
                time.sleep(0.5)  # a page polls about twice a second
        finally:
            connection.close()

    def sample() -> None:
        while time.monotonic() < stop:
            peak_rss[0] = max(peak_rss[0], rss_mb(server.process.pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=sample))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    cpu_after = cpu_seconds(server.process.pid)
    client_cpu = time.process_time() - client_cpu_before
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as web:
        statuses = [web.get(f"/api/v1/executions/{i}").json()["status"] for i in ids]
    every = latencies["status"] + latencies["logs"]
    report = {
        "clients": clients, "executions": executions, "seconds": round(elapsed, 1),
        "requests": len(every), "requests_per_s": round(len(every) / elapsed, 1), "errors": len(errors),
        "error_samples": errors[:5],
        "latency_ms": {kind: {"p50": round(statistics.median(v) * 1000, 1) if v else None,
                              "p90": round(percentile(v, 90) * 1000, 1), "p99": round(percentile(v, 99) * 1000, 1),
                              "max": round(max(v) * 1000, 1) if v else None}
                       for kind, v in {**latencies, "all": every, "in_server": in_server}.items()},
        # the tail over time: a burst (executions starting) and a steady tail need different cures
        "p99_ms_by_10s": {f"{w * 10}-{w * 10 + 10}s": round(percentile(
            [t for t, at, _ in slowest if w * 10 <= at < w * 10 + 10], 99) * 1000, 1)
            for w in range(int(elapsed // 10))},
        "slowest": [{"ms": round(t * 1000), "at_s": round(at, 1), "kind": k}
                    for t, at, k in sorted(slowest, reverse=True)[:12]],
        "server_cpu_s": round(cpu_after[0] - cpu_before[0], 1),
        "server_cpu_with_children_s": round(cpu_after[1] - cpu_before[1], 1),
        "server_cpu_percent_of_one_core": round(100 * (cpu_after[0] - cpu_before[0]) / elapsed, 1),
        "clients_cpu_percent_of_one_core": round(100 * client_cpu / elapsed, 1),
        "server_peak_rss_mb": round(peak_rss[0], 1),
        "executions_at_end": statuses,
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--executions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = run(args.clients, args.executions, args.seconds)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
