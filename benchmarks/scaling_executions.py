"""scaling.py executions: N executions of the minimal workflow started at once through `orch serve`.

The embedded site (sites/localhost.yaml) with its folders moved under a fresh /tmp folder of ours,
so nobody else's /tmp/orch-embedded is touched. The minimal workflow is deployed D times (wc0..), each
exposed; a user POSTs all N executions at the same moment (one thread each, behind a barrier),
execution i to deployment i % D. Each execution has a dataset of its own (one word of its own,
repeated i+1 times) and staged-in, cluster and result folders of its own: its counts must be exactly
that word and count. A deployment runs one execution at a time: with D < N the executions beyond D
wait in the service's queue (status "queued") and start, first come first served, as their deployment
is free. Any POST refused is counted and reported, never retried. Reported: how many finished with the
right counts, throughput, each execution's run time and time waiting in the queue, the server's peak
memory (alone and with its Ansible workers) and CPU.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml
from measure import tree_rss
from serve_load import cpu_seconds, percentile, rss_mb
from sim_latency import log

from orchestrator.api import Orchestrator

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGY = ROOT / "topologies" / "minimal-workflow.yaml"
SITE = ROOT / "sites" / "localhost.yaml"
SITE_FOLDERS = ("work_dir", "image_dir", "data_dir", "build_dir", "results_dir")
FINISHED = {"done", "failed", "cancelled", "interrupted"}
MB = 1024 * 1024


def word_of(i: int) -> tuple[str, int]:
    return f"scale{i}word", i + 1


def execution_inputs(runs: Path, i: int) -> dict[str, str]:
    """Execution i's own dataset and folders, all under the server's data root (runs)."""
    dataset = runs / f"in{i}"
    dataset.mkdir(parents=True)
    word, count = word_of(i)
    (dataset / "words.txt").write_text(" ".join([word] * count) + "\n")
    own = runs / f"ex{i}"
    return {"dataset": str(dataset), "staged_in_data_path": str(own / "staged"),
            "cluster_results_path": str(own / "cluster"), "result_data_path": str(own / "results")}


def prepare(work: Path, deployments: int) -> tuple[str, list[float]]:
    """Deploy and expose the minimal workflow `deployments` times; the user's token and deploy times."""
    inputs = yaml.safe_load(SITE.read_text())
    inputs.update({key: str(work / "site" / key) for key in SITE_FOLDERS})
    api = Orchestrator(work / "home")
    times = []
    try:
        for j in range(deployments):
            began = time.monotonic()
            deployed = api.deploy(f"wc{j}", str(TOPOLOGY), inputs)
            if not deployed.outcome.ok:
                raise RuntimeError(f"deploy of wc{j} failed: {deployed.outcome.failures}")
            times.append(round(time.monotonic() - began, 1))
            log(f"executions: deployed wc{j} ({j + 1}/{deployments}) in {times[-1]} s")
            api.expose(f"wc{j}", "exec_job", f"wc{j}@localhost@exec_job")
        return api.create_user("scale"), times
    finally:
        api.close()


class Sampler(threading.Thread):
    """The server's peak RSS, alone and with its process tree (its Ansible workers), every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.peak_self, self.peak_tree = pid, threading.Event(), 0.0, 0.0

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_self = max(self.peak_self, rss_mb(self.pid))
            self.peak_tree = max(self.peak_tree, tree_rss(self.pid) / MB)
            self.stop.wait(0.2)


def post_all(url: str, headers: dict, bodies: list[dict]) -> list[dict]:
    """Every POST at the same moment, one thread and connection each; the replies in order."""
    barrier = threading.Barrier(len(bodies))
    replies: list[dict] = [{} for _ in bodies]

    def post(i: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            barrier.wait()
            began = time.time()
            reply = http.post("/api/v1/executions", json=bodies[i])
            replies[i] = {"status_code": reply.status_code, "posted": began, "reply_s": round(time.time() - began, 3),
                          **({"id": reply.json()["id"]} if reply.status_code == 202 else {"error": reply.text[:300]})}

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def wait_all(http: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        views = {v["id"]: v for v in http.get("/api/v1/executions").json() if v["id"] in ids}
        if all(views.get(i, {}).get("status") in FINISHED for i in ids) or time.monotonic() > deadline:
            return views
        time.sleep(1.0)


def check_counts(runs: Path, i: int) -> str | None:
    """None when execution i's counts are its own word and count alone, else what is wrong."""
    word, count = word_of(i)
    counts = runs / f"ex{i}" / "results" / "counts.txt"
    if not counts.is_file():
        return f"no {counts}"
    lines = counts.read_text().splitlines()
    return None if lines == [f"{word} {count}"] else f"{counts} holds {lines[:5]}, not ['{word} {count}']"


def measure(executions: int, keep: bool, deployments: int = 1, timeout: float = 3600) -> dict:
    import live_server  # tests/serve, put on sys.path by serve_load

    work = Path(tempfile.mkdtemp(prefix="osx-", dir="/tmp"))
    runs = work / "runs"
    try:
        token, deploy_times = prepare(work, deployments)
        bodies = [{"workflow": f"wc{i % deployments}@localhost@exec_job", "inputs": execution_inputs(runs, i)}
                  for i in range(executions)]
        server = live_server.Server(work / "home", work / "serve.log", "--data-root", str(runs))
        server.start()
        sampler = Sampler(server.process.pid)
        sampler.start()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            cpu_before, began = cpu_seconds(server.process.pid), time.time()
            log(f"executions: POST {executions} at once")
            replies = post_all(server.url, headers, bodies)
            ids = [r["id"] for r in replies if "id" in r]
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
                views = wait_all(http, ids, timeout)
            cpu_after = cpu_seconds(server.process.pid)
        finally:
            sampler.stop.set()
            server.stop()
        return report(runs, replies, views, began, cpu_before, cpu_after, sampler, deploy_times)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def report(runs: Path, replies: list[dict], views: dict, began: float, cpu_before: tuple, cpu_after: tuple,
           sampler: Sampler, deploy_times: list[float]) -> dict:
    rows = []
    for i, reply in enumerate(replies):
        view = views.get(reply.get("id"), {})
        row = {"execution": i, **reply, "status": view.get("status", "refused"),
               "wall_s": round(view["ended"] - view["started"], 1) if view.get("ended") else None,
               "queued_s": round(view["started"] - reply["posted"], 1) if view.get("started") else None,
               "error_of_run": view.get("error")}
        row["counts_problem"] = check_counts(runs, i) if "id" in reply else None
        rows.append(row)
    accepted = [r for r in rows if "id" in r]
    walls = [r["wall_s"] for r in accepted if r["wall_s"] is not None]
    ended = [views[r["id"]]["ended"] for r in accepted if views.get(r["id"], {}).get("ended")]
    total = max(ended) - began if ended else None
    done = [r for r in accepted if r["status"] == "done" and r["counts_problem"] is None]
    refusals = sorted({r["error"] for r in rows if "error" in r})
    return {
        "executions": len(rows), "deployments": len(deploy_times), "deploy_s": deploy_times,
        "accepted": len(accepted), "refused": len(rows) - len(accepted), "refusal_replies": refusals[:5],
        "done_with_right_counts": len(done), "all_right": len(done) == len(rows),
        "statuses": {s: sum(1 for r in rows if r["status"] == s) for s in sorted({r["status"] for r in rows})},
        "total_wall_s": round(total, 1) if total else None,
        "throughput_per_min": round(len(done) / total * 60, 2) if total and done else 0.0,
        "execution_wall_s": {"p50": statistics.median(walls) if walls else None,
                             "p90": percentile(walls, 90) if walls else None, "max": max(walls) if walls else None},
        "queued_s_max": max((r["queued_s"] for r in accepted if r["queued_s"] is not None), default=None),
        "post_reply_s_max": max(r["reply_s"] for r in rows),
        "server_peak_rss_mb": round(sampler.peak_self, 1), "server_tree_peak_rss_mb": round(sampler.peak_tree, 1),
        "server_cpu_s": round(cpu_after[0] - cpu_before[0], 1),
        "server_cpu_with_children_s": round(cpu_after[1] - cpu_before[1], 1),
        "problems": [{k: r[k] for k in ("execution", "status", "error_of_run", "counts_problem")}
                     for r in accepted if r not in done],
        "rows": rows,
    }


def print_table(result: dict) -> None:
    print(f"\n{result['executions']} executions of the minimal workflow POSTed at once, "
          f"on {result['deployments']} deployment(s)")
    print("| accepted | refused | done, right counts | total s | per min | exec. s p50 | max | longest wait s | "
          "serve RSS MB | with children MB | serve CPU s | with children |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    w = result["execution_wall_s"]
    print(f"| {result['accepted']} | {result['refused']} | {result['done_with_right_counts']} | "
          f"{result['total_wall_s']} | {result['throughput_per_min']} | {w['p50']} | {w['max']} | "
          f"{result['queued_s_max']} | "
          f"{result['server_peak_rss_mb']} | {result['server_tree_peak_rss_mb']} | {result['server_cpu_s']} | "
          f"{result['server_cpu_with_children_s']} |")
    for reply in result["refusal_replies"]:
        print(f"refused: {reply}")
    for problem in result["problems"][:10]:
        print(f"wrong: {problem}")
