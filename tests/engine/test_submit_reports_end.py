"""A submit that waited for its job's end and says so (TOSCA_JOB_STATUS: COMPLETED among its facts, as the
embedded data mover's does) has its watch settled without a poll: no request for the watch playbook, the
watch recorded done with the job's status, the job's event in the log. Any other status a submit reports is
the watch's to judge: it is polled as before. The executor is test_watch_groups.py's stand-in scheduler (no
Ansible); the mover's side runs for real in the data tests (tests/integration/test_data_mover.py)."""

from __future__ import annotations

from pathlib import Path

from test_watch_groups import Scheduler, job_events, run


class SubmitReports(Scheduler):
    """The stand-in scheduler, whose submits also report a status: node -> the status its submit says."""

    def __init__(self, script: dict[str, list[str]], said: dict[str, str]):
        super().__init__(script)
        self.said = said

    def run_batch(self, requests, on_event=None, cancel=None, timeout=None):
        results = super().run_batch(requests, on_event, cancel, timeout)
        for request in requests:
            node = request.variables.get("NODE")
            if request.playbook.endswith("submit.yaml") and node in self.said:
                results[request.alias].facts["TOSCA_JOB_STATUS"] = self.said[node]
        return results


def watched(executor: Scheduler) -> list[str]:
    """The job ids the watch playbook was asked about, in order."""
    ids = []
    for batch in executor.watch_batches:
        for request in batch:
            ids += [w["TOSCA_JOB_ID"] for w in request.variables.get("ORCH_WATCHES", [])] or \
                   [request.variables["TOSCA_JOB_ID"]]
    return ids


def test_a_submit_that_reports_completed_is_not_polled_and_its_watch_is_done(tmp_path: Path):
    executor = SubmitReports({"102": ["RUNNING", "COMPLETED"]}, said={"job_1": "COMPLETED"})
    orchestrator, result = run(tmp_path, ["job_1", "job_2"], executor)
    assert result.outcome.ok, result.outcome.failures

    assert "101" not in watched(executor)  # job_1's watch never ran its playbook
    assert watched(executor).count("102") == 2  # job_2, whose submit said nothing, was polled to its end
    watches = {r.node: (r.status, r.outputs.get("TOSCA_JOB_STATUS"))
               for r in orchestrator.store.operation_runs("t", result.execution_id) if r.operation == "Runnable.run"}
    assert watches == {"job_1": ("done", "COMPLETED"), "job_2": ("done", "COMPLETED")}
    events = job_events(orchestrator, result.execution_id)
    assert "job 101 of job_1: COMPLETED (as its submit reported)" in events
    assert "job 102 of job_2: COMPLETED" in events
    orchestrator.close()


def test_any_other_status_a_submit_reports_is_left_to_the_watch(tmp_path: Path):
    # a submit that says the job is queued, or uses a word orch does not know: the watch polls and decides
    executor = SubmitReports({"101": ["RUNNING", "COMPLETED"], "102": ["FAILED boom"]},
                             said={"job_1": "QUEUED", "job_2": "SUBMITTED"})
    orchestrator, result = run(tmp_path, ["job_1", "job_2"], executor)
    assert watched(executor).count("101") == 2 and watched(executor).count("102") == 1
    (failure,) = result.outcome.failures
    assert (failure.node, failure.operation, failure.message) == ("job_2", "Runnable.run", "job 102 failed: boom")
    orchestrator.close()
