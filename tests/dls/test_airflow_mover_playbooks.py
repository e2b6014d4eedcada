"""The Airflow mover's playbooks against a local Airflow, without a workflow around them: its state of a
run that fails says the failing task's error, and its cancel (through data_cancel.yaml's dispatch) stops a
running DAG run; a place pair no DAG moves between is refused by name before anything is triggered."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from integration.test_plug_playbooks import PLAYBOOKS, play


def _deployment_dir(airflow, tmp_path: Path) -> Path:
    """A deployment folder inside the Airflow's ORCH_HOME: the mover finds the local service from it."""
    folder = airflow.home / "deployments" / f"mover-{uuid.uuid4().hex[:8]}"
    (folder / "moved").mkdir(parents=True)
    return folder


def test_state_reports_a_failed_run_with_its_tasks_error(dls_airflow, tmp_path):
    run_id = f"orch-test-{uuid.uuid4().hex[:8]}"
    dls_airflow.client().trigger("orch_check", run_id, {"fail": "the source went away"})
    deployment = _deployment_dir(dls_airflow, tmp_path)
    try:
        inputs = {"NODE": "move", "mover": "airflow", "DEPLOYMENT_DIR": str(deployment), "ORCH_HOSTS": {},
                  "TOSCA_JOB_ID": f"orch_check/{run_id}"}
        state = dls_airflow.wait_for(lambda: (lambda o: o if o.facts.get("TOSCA_JOB_STATUS") == "FAILED" else None)(
            play(PLAYBOOKS / "eflows" / "data_done.yaml", tmp_path, **inputs)))
        assert "the source went away" in state.facts["TOSCA_JOB_ERROR"]
        assert "checksum" not in state.facts
    finally:
        shutil.rmtree(deployment)


def test_cancel_stops_the_running_dag_run(dls_airflow, tmp_path):
    client = dls_airflow.client()
    run_id = f"orch-test-{uuid.uuid4().hex[:8]}"
    client.trigger("orch_check", run_id, {"sleep": 600})
    dls_airflow.wait_for(lambda: client.state("orch_check", run_id) == "running")
    deployment = _deployment_dir(dls_airflow, tmp_path)
    try:
        inputs = {"NODE": "move", "mover": "airflow", "DEPLOYMENT_DIR": str(deployment), "ORCH_HOSTS": {},
                  "TOSCA_JOB_ID": f"orch_check/{run_id}"}
        cancelled = play(PLAYBOOKS / "eflows" / "data_cancel.yaml", tmp_path, **inputs)
        assert cancelled.rc == 0, cancelled
        assert client.state("orch_check", run_id) == "failed"
        dls_airflow.wait_for(lambda: all(t["state"] != "running" for t in client.task_instances("orch_check", run_id)),
                             timeout=90)
    finally:
        shutil.rmtree(deployment)


def test_places_no_dag_moves_between_are_refused_before_any_trigger(dls_airflow, tmp_path):
    deployment = _deployment_dir(dls_airflow, tmp_path)
    try:
        (tmp_path / "here").mkdir()
        moved = play(PLAYBOOKS / "eflows" / "data_move.yaml", tmp_path, NODE="move", mover="airflow",
                     source=str(tmp_path / "here"), target=str(tmp_path / "there"), DEPLOYMENT_DIR=str(deployment),
                     DEPLOYMENT_ID="mover", ORCH_HOSTS={})
        assert moved.rc != 0
        assert moved.failures == ["move: the Airflow mover moves data onto or off a host of the topology "
                                  "(HOST:/path); neither the source nor the target is one"]
        assert "TOSCA_JOB_ID" not in moved.facts and not (tmp_path / "there").exists()
    finally:
        shutil.rmtree(deployment)
