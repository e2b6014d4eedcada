"""Many Slurm jobs of one workflow on the simulated site, watched as one: every poll round of
playbooks/jobs/slurm_run.yaml is ONE inventory alias for the login host listing all the jobs still in flight
(schedulers/slurm/state_many.yaml, one look at the shared squeue listing), and each watch is settled from that
one answer: the jobs that succeed are done with their COMPLETED event, the one that fails among them fails the
execution with its own exit code and the end of its error output. Real Ansible, SSH and Slurm; the executor is
orch's own, wrapped to keep the requests of each batch."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator.api import Orchestrator
from orchestrator.executors.ansible import AnsibleExecutor

pytestmark = pytest.mark.e2e

JOBS = 6
BAD = 4  # job_4 fails


def topology(folder: Path) -> Path:
    text = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    login_host: { type: string }
    ssh_user: { type: string }
    ssh_port: { type: integer, default: 22 }
    ssh_key_file: { type: string }
    known_hosts_file: { type: string }
    work_dir: { type: string }
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
    for i in range(1, JOBS + 1):
        command = "echo broke on purpose >&2; exit 3" if i == BAD else f"sleep {i % 3}; echo ok"
        text += f"""\
    job_{i}:
      type: orch.nodes.SlurmJob
      properties:
        work_dir: {{ concat: [ {{ get_input: work_dir }}, /orch-many ] }}
        job_name: orch-many
        command: "{command}"
      requirements: [ {{ host: login }} ]
"""
    text += "  workflows:\n    go:\n      steps:\n"
    for i in range(1, JOBS + 1):
        text += (f"        job_{i}:\n          target: job_{i}\n          activities:\n"
                 "            - call_operation: Runnable.submit\n            - call_operation: Runnable.run\n")
    path = folder / "topology.yaml"
    path.write_text(text)
    return path


class Recording(AnsibleExecutor):
    """orch's executor, keeping the requests of each batch of the watch playbook."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.watch_batches: list[list] = []
        self._record = threading.Lock()

    def run_batch(self, requests, on_event=None, cancel=None, timeout=None):
        if requests and requests[0].playbook.endswith("slurm_run.yaml"):
            with self._record:
                self.watch_batches.append(list(requests))
        return super().run_batch(requests, on_event, cancel, timeout)


def test_many_slurm_jobs_are_watched_in_one_request_per_round_each_settled(sim_site, tmp_path):
    inputs = {name: sim_site[name] for name in ("login_host", "ssh_user", "ssh_port", "ssh_key_file",
                                                "known_hosts_file", "work_dir")}
    home = tmp_path / "home"
    with Recording(home) as executor:
        orchestrator = Orchestrator(home, executor=executor)
        assert orchestrator.deploy("many", str(topology(tmp_path)), inputs).outcome.ok
        result = orchestrator.run("many", "go", {})

    # one alias per round for the login host, the first listing every job (all submitted in one batch)
    assert executor.watch_batches and all(len(batch) == 1 for batch in executor.watch_batches)
    listed = [[w["TOSCA_JOB_ID"] for w in batch[0].variables["ORCH_WATCHES"]] for batch in executor.watch_batches]
    assert len(listed[0]) == JOBS and all(set(later) <= set(listed[0]) for later in listed[1:])

    # each watch settled from its own line: the bad one failed with its exit code and error output
    assert not result.outcome.ok
    assert len(result.outcome.failures) == 1, result.outcome.failures
    (failure,) = result.outcome.failures
    assert (failure.node, failure.operation) == (f"job_{BAD}", "Runnable.run")
    assert "failed: Slurm state FAILED, exit code 3:0: broke on purpose" in failure.message
    runs = {r.node: r.status for r in orchestrator.store.operation_runs("many", result.execution_id)
            if r.operation == "Runnable.run"}
    assert runs == {f"job_{i}": "failed" if i == BAD else "done" for i in range(1, JOBS + 1)}
    ids = {f"job_{i}": orchestrator.store.operation_output("many", f"job_{i}", "Runnable.submit", "TOSCA_JOB_ID")
           for i in range(1, JOBS + 1)}
    events = {e.message for e in orchestrator.store.events("many", result.execution_id) if e.kind == "job"}
    for node, job_id in ids.items():
        assert f"job {job_id} of {node}: {'FAILED' if node == f'job_{BAD}' else 'COMPLETED'}" in events
        assert job_id in listed[0]
    orchestrator.close()
