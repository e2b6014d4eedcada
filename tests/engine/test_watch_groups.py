"""The watches of one host polled as one: a watch playbook that says it can (`orch_watches_many: true`) gets,
per poll round, ONE request for all the host's jobs still in flight (ORCH_WATCHES, with the status orch last
saw of each), and each watch is settled from that one answer: the ones that ended leave the round, the others
stay together, a failed job among them fails with its own error, a poll that fails fails each watch. A job id
that is not one plain word is polled alone, as before. The executor here is a stand-in that plays the
scheduler (no Ansible): what is checked is the engine's side of the contract; the playbook's side runs on
the simulated site in tests/integration/test_jobs_many.py."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

from orchestrator.api import Orchestrator
from orchestrator.engine import jobs
from orchestrator.executors.inventory import OperationRequest, Target
from orchestrator.executors.results import OperationResult

RUN_MANY = """\
- hosts: all
  gather_facts: false
  vars: { orch_watches_many: true }
  tasks: []
"""
RUN_ONE = """\
- hosts: all
  gather_facts: false
  tasks: []
"""


def topology(folder: Path, names: list[str], run_playbook: str = RUN_MANY) -> Path:
    (folder / "submit.yaml").write_text(RUN_ONE)
    (folder / "run.yaml").write_text(run_playbook)
    (folder / "cancel.yaml").write_text(RUN_ONE)
    text = """\
tosca_definitions_version: tosca_simple_yaml_1_3
node_types:
  test.Job:
    derived_from: tosca.nodes.Root
    interfaces:
      Runnable:
        type: tosca.interfaces.node.lifecycle.Runnable
        submit: submit.yaml
        run: run.yaml
        cancel: cancel.yaml
topology_template:
  node_templates:
"""
    text += "".join(f"    {name}: {{ type: test.Job }}\n" for name in names)
    text += "  workflows:\n    go:\n      steps:\n"
    text += "".join(f"        {name}:\n          target: {name}\n          activities:\n"
                    "            - call_operation: Runnable.submit\n            - call_operation: Runnable.run\n"
                    for name in names)
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


class Scheduler:
    """Plays Slurm: each job's id from its node's name, its status for each poll from a script
    (job id -> statuses, one per poll; the last one stays)."""

    def __init__(self, script: dict[str, list[str]], ids: dict[str, str] | None = None,
                 poll_fails: bool = False):
        self.script = script
        self.ids = ids or {}
        self.poll_fails = poll_fails
        self.polls: dict[str, int] = {}
        self.watch_batches: list[list[OperationRequest]] = []

    def job_id(self, node: str) -> str:
        return self.ids.get(node, str(100 + int(node.rsplit("_", 1)[1])))

    def status(self, job_id: str) -> str:
        seen = self.polls.get(job_id, 0)
        self.polls[job_id] = seen + 1
        statuses = self.script.get(job_id, ["COMPLETED"])
        return statuses[min(seen, len(statuses) - 1)]

    def run_batch(self, requests, on_event=None, cancel=None, timeout=None):
        results = {}
        if requests[0].playbook.endswith("run.yaml"):
            self.watch_batches.append(list(requests))
        for request in requests:
            if request.playbook.endswith("submit.yaml"):
                results[request.alias] = OperationResult(request.alias,
                                                         facts={"TOSCA_JOB_ID": self.job_id(request.variables["NODE"])})
            elif request.playbook.endswith("cancel.yaml"):
                results[request.alias] = OperationResult(request.alias)
            elif self.poll_fails:
                results[request.alias] = OperationResult(request.alias, ok=False, failed_task="Ask Slurm",
                                                         message="squeue: command not found")
            elif "ORCH_WATCHES" in request.variables:
                lines = []
                for watch in request.variables["ORCH_WATCHES"]:
                    status = self.status(watch["TOSCA_JOB_ID"])
                    if status.startswith("FAILED"):
                        detail = base64.b64encode(status.split(" ", 1)[1].encode()).decode()
                        lines.append(f"{watch['watch']} FAILED {detail}")
                    else:
                        lines.append(f"{watch['watch']} {status}")
                results[request.alias] = OperationResult(request.alias, facts={"ORCH_JOB_STATES": lines})
            else:  # polled alone, as a watch playbook of one job answers
                job_id = request.variables["TOSCA_JOB_ID"]
                status = self.status(job_id)
                results[request.alias] = OperationResult(request.alias, facts={
                    "TOSCA_JOB_ID": job_id, "TOSCA_JOB_STATUS": status.split()[0],
                    "TOSCA_JOB_ERROR": status.split(" ", 1)[1] if " " in status else ""})
        return results

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass


def run(tmp_path: Path, names: list[str], executor: Scheduler, run_playbook: str = RUN_MANY):
    orchestrator = Orchestrator(tmp_path / "home", executor=executor)
    path = topology(tmp_path, names, run_playbook)
    assert orchestrator.deploy("t", str(path), {}).outcome.ok
    result = orchestrator.run("t", "go", {})
    return orchestrator, result


def job_events(orchestrator: Orchestrator, execution_id: str) -> list[str]:
    return [e.message for e in orchestrator.store.events("t", execution_id) if e.kind == "job"]


def test_many_jobs_of_a_host_are_polled_as_one_and_each_settled_from_it(tmp_path):
    names = [f"job_{i}" for i in range(1, 7)]
    script = {"101": ["QUEUED", "RUNNING", "COMPLETED"], "102": ["RUNNING", "COMPLETED"],
              "103": ["QUEUED", "FAILED Slurm state FAILED, exit code 3:0: boom\nline two"],
              "104": ["QUEUED", "QUEUED", "QUEUED", "RUNNING", "COMPLETED"], "105": ["COMPLETED"],
              "106": ["RUNNING", "RUNNING", "COMPLETED"]}
    executor = Scheduler(script)
    orchestrator, result = run(tmp_path, names, executor)

    # one request per round, listing exactly the jobs still in flight, with the status last seen of each
    rounds = [[(w["TOSCA_JOB_ID"], w["status"]) for w in batch[0].variables["ORCH_WATCHES"]]
              for batch in executor.watch_batches]
    assert all(len(batch) == 1 for batch in executor.watch_batches)
    assert rounds[0] == [(str(i), "") for i in range(101, 107)]
    assert rounds[1] == [("101", "QUEUED"), ("102", "RUNNING"), ("103", "QUEUED"), ("104", "QUEUED"),
                         ("106", "RUNNING")]
    assert rounds[2] == [("101", "RUNNING"), ("104", "QUEUED"), ("106", "RUNNING")]
    assert rounds[3:] == [[("104", "QUEUED")], [("104", "RUNNING")]]
    assert executor.polls == {"101": 3, "102": 2, "103": 2, "104": 5, "105": 1, "106": 3}

    # each watch settled by its own line: five done, the failed one failed with its own error
    assert not result.outcome.ok
    (failure,) = result.outcome.failures
    assert (failure.node, failure.operation) == ("job_3", "Runnable.run")
    assert failure.message == "job 103 failed: Slurm state FAILED, exit code 3:0: boom\nline two"
    watches = {r.node: r.status for r in orchestrator.store.operation_runs("t", result.execution_id)
               if r.operation == "Runnable.run"}
    assert watches == {"job_1": "done", "job_2": "done", "job_3": "failed", "job_4": "done", "job_5": "done",
                       "job_6": "done"}
    events = job_events(orchestrator, result.execution_id)
    for i in (1, 2, 4, 5, 6):
        assert f"job {100 + i} of job_{i}: COMPLETED" in events
    assert "job 103 of job_3: FAILED" in events and "job 104 of job_4: RUNNING" in events
    orchestrator.close()


def test_a_failed_poll_fails_every_watch_of_the_round_with_its_message(tmp_path):
    executor = Scheduler({}, poll_fails=True)
    orchestrator, result = run(tmp_path, ["job_1", "job_2", "job_3"], executor)
    assert len(executor.watch_batches) == 1 and len(executor.watch_batches[0]) == 1
    assert sorted(f.node for f in result.outcome.failures) == ["job_1", "job_2", "job_3"]
    assert {(f.task, f.message) for f in result.outcome.failures} == {("Ask Slurm", "squeue: command not found")}
    orchestrator.close()


def test_an_id_that_is_not_one_plain_word_and_a_playbook_that_polls_one_job_are_polled_alone(tmp_path):
    executor = Scheduler({"7 8": ["RUNNING", "COMPLETED"]}, ids={"job_1": "7 8"})
    orchestrator, result = run(tmp_path, ["job_1", "job_2", "job_3"], executor)
    assert result.outcome.ok
    assert sorted(r.alias for r in executor.watch_batches[0]) == ["op_job_1_1", "watches_0"]
    alone = next(r for r in executor.watch_batches[0] if r.alias == "op_job_1_1")
    assert alone.variables["TOSCA_JOB_ID"] == "7 8" and "ORCH_WATCHES" not in alone.variables
    orchestrator.close()

    (tmp_path / "one").mkdir()
    one = Scheduler({"101": ["RUNNING", "COMPLETED"]})
    orchestrator, result = run(tmp_path / "one", ["job_1", "job_2"], one, RUN_ONE)
    assert result.outcome.ok
    assert sorted(r.alias for r in one.watch_batches[0]) == ["op_job_1_1", "op_job_2_1"]
    assert all("ORCH_WATCHES" not in r.variables for batch in one.watch_batches for r in batch)
    orchestrator.close()


def test_watches_of_two_hosts_are_two_requests_and_results_map_back(tmp_path):
    target_a, target_b = Target("a", "10.0.0.1", user="u"), Target("b", "10.0.0.2", user="u")
    playbook = str(Path(__file__).with_name("test_watch_groups.py"))  # not a playbook: polls one job at a time
    requests = [OperationRequest(f"op_{i}", playbook, target, {"TOSCA_JOB_ID": str(i)})
                for i, target in ((1, target_a), (2, target_b))]
    kept, groups = jobs.group_watches(requests, {"op_1": "", "op_2": ""})
    assert kept == requests and groups == []

    marked = tmp_path / "run.yaml"
    marked.write_text(RUN_MANY)  # the mark is read from the file
    many = [OperationRequest(r.alias, str(marked), r.target, r.variables) for r in requests]
    many.append(OperationRequest("op_3", str(marked), target_a, {"TOSCA_JOB_ID": "3"}))
    many.append(OperationRequest("op_other", str(marked), target_a, {}))  # not a watch
    kept, groups = jobs.group_watches(many, {"op_1": "RUNNING", "op_2": "", "op_3": "QUEUED"})
    assert [r.alias for r in kept] == ["op_other", "watches_0", "watches_1"]
    assert [[w["watch"] for w in g.request.variables["ORCH_WATCHES"]] for g in groups] == [["op_1", "op_3"],
                                                                                            ["op_2"]]
    assert groups[0].request.target == target_a and groups[1].request.target == target_b
    reported = groups[0].results(OperationResult("watches_0", facts={"ORCH_JOB_STATES": ["op_1 COMPLETED"]}))
    assert reported["op_1"].ok and reported["op_1"].facts == {"TOSCA_JOB_ID": "1", "TOSCA_JOB_STATUS": "COMPLETED",
                                                              "TOSCA_JOB_ERROR": ""}
    assert not reported["op_3"].ok and "did not report job 3" in reported["op_3"].message
    assert not groups[1].results(None)["op_2"].ok


def test_many_submits_go_in_runs_and_the_first_jobs_are_watched_while_the_rest_are_submitted(tmp_path):
    names = [f"job_{i}" for i in range(1, 46)]  # 45: two full runs of submits and a part one
    executor = Scheduler({str(100 + i): ["RUNNING", "RUNNING", "COMPLETED"] for i in range(1, 46)})
    submits: list[list[str]] = []
    polls_in_flight, most_in_flight = [0], [0]
    lock = threading.Lock()
    run_batch = executor.run_batch

    def recording(requests, **kwargs):
        if requests[0].playbook.endswith("submit.yaml"):
            submits.append(sorted(r.variables["NODE"] for r in requests))
            return run_batch(requests, **kwargs)
        with lock:
            polls_in_flight[0] += 1
            most_in_flight[0] = max(most_in_flight[0], polls_in_flight[0])
        time.sleep(0.05)  # a poll takes a while: the next run of submits returns meanwhile
        try:
            return run_batch(requests, **kwargs)
        finally:
            with lock:
                polls_in_flight[0] -= 1

    executor.run_batch = recording
    orchestrator, result = run(tmp_path, names, executor)
    assert result.outcome.ok
    assert [len(s) for s in submits] == [jobs.SUBMITS_PER_RUN, jobs.SUBMITS_PER_RUN, 5]
    assert sorted(n for s in submits for n in s) == sorted(names)
    # the first round polls the first run's jobs alone: it started before the later ones were submitted
    first_round = {w["TOSCA_JOB_ID"] for w in executor.watch_batches[0][0].variables["ORCH_WATCHES"]}
    assert first_round == {executor.job_id(n) for n in submits[0]}
    # the later runs' jobs join the host's next poll: never two polls of one host at once
    assert most_in_flight[0] == 1
    assert all(len(batch) == 1 for batch in executor.watch_batches)
    watches = {r.node: r.status for r in orchestrator.store.operation_runs("t", result.execution_id)
               if r.operation == "Runnable.run"}
    assert watches == {n: "done" for n in names}
    orchestrator.close()
