"""Periodic transfers (issue 17): a StageInData with a schedule and mover=airflow, deployed on the simulated site
in the ORCH_HOME of a local Airflow (tests/dls/conftest.py), is a scheduled DAG from deploy to undeploy: its
runs move the dataset from the data host to the login host, `orch status` shows them, and undeploy deletes the
DAG (no run after it) and removes the target. A schedule orch cannot keep is refused, naming the node."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.dls.dags import _periodic
from orchestrator.render import periodic_line
from orchestrator.store.sqlite import Store

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = Path(__file__).parent / "data" / "periodic-stage-in.yaml"
SAMPLE = ROOT / "workflows" / "wordcount" / "data" / "sample"
DAG = "orch_periodic_per_periodic"


# -- the pure parts ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["@every 15s", "@every 2h", "*/5 * * * *", "0 3 * * MON-FRI", "@daily"])
def test_the_schedules_orch_gives_airflow(text):
    assert _periodic.schedule_problem(text) == ""


@pytest.mark.parametrize("text", ["every 15s", "@every 0s", "@every 5 weeks", "* * * *", "@sometimes", "15"])
def test_a_schedule_airflow_would_not_take_is_refused_with_the_syntax(text):
    assert "cron expression" in _periodic.schedule_problem(text)


def test_an_interval_is_a_timedelta_and_cron_stays_text():
    assert _periodic.airflow_schedule("@every 15s") == timedelta(seconds=15)
    assert _periodic.airflow_schedule(" */5 * * * * ") == "*/5 * * * *"


def test_the_status_line_says_last_run_next_run_and_failures():
    summary = _periodic.summary({"is_paused": False, "next_dagrun_run_after": "2026-01-01T00:00:15Z"},
                                {"state": "failed", "end_date": "2026-01-01T00:00:02Z"}, failed=3, succeeded=4)
    assert periodic_line(summary) == ("last run failed at 2026-01-01T00:00:02Z, next run 2026-01-01T00:00:15Z, "
                                      "4 succeeded, 3 failed")
    assert periodic_line(_periodic.summary(None, None, 0, 0)) == "not on the data logistics service"


# -- on the simulated site, with the local Airflow -------------------------------------------------------------

def _runs(dls_airflow) -> dict[str, str]:
    _status, answer = dls_airflow.client().call("GET", f"/dags/{DAG}/dagRuns?limit=100")
    return {r["dag_run_id"]: r["state"] for r in answer["dag_runs"]}


@pytest.fixture(scope="module")
def site_file(sim_site) -> Path:
    copied = subprocess.run(["scp", "-q", "-F", str(sim_site.ssh_config), "-r", str(SAMPLE),
                             "data:/data/periodic-sample"], capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    return sim_site.directory / "site.yaml"


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "setting", "said"), [
    ("perbad1", "mover=ansible", "a periodic transfer needs mover airflow"),
    ("perbad2", "schedule=every day", "property schedule: 'every day' is neither a cron expression"),
])
def test_a_schedule_orch_cannot_keep_fails_the_deploy_naming_the_node(dls_airflow, site_file, name, setting, said):
    deployed = dls_airflow.orch("deploy", str(TOPOLOGY), "-n", name, "-i", str(site_file), "--set", setting)
    try:
        assert deployed.returncode != 0
        told = deployed.stdout + deployed.stderr
        assert said in told and "periodic" in told, told
        assert not list((dls_airflow.home / "dls" / "periodic").glob(f"orch_periodic_{name}_*"))
    finally:
        dls_airflow.orch("undeploy", name)


@pytest.mark.e2e
def test_a_scheduled_stage_in_runs_until_undeploy(sim_site, dls_airflow, site_file):
    deployed = dls_airflow.orch("deploy", str(TOPOLOGY), "-n", "per", "-i", str(site_file))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    store = Store(dls_airflow.home)
    try:
        attributes = store.attributes("per")["periodic"]
    finally:
        store.close()
    assert attributes["periodic_dag"] == DAG
    assert (dls_airflow.home / "dls" / "periodic" / f"{DAG}.json").is_file()

    def two_succeeded():
        return sum(state == "success" for state in _runs(dls_airflow).values()) >= 2
    dls_airflow.wait_for(two_succeeded, timeout=240, every=2)
    assert "failed" not in _runs(dls_airflow).values()
    # the dataset is on the login host
    listed = sim_site.ssh("login", "ls /data/periodic-input")
    assert listed.stdout.split() == sorted(p.name for p in SAMPLE.glob("*"))

    status = dls_airflow.orch("status", "per")
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("periodic.periodic:"))
    assert re.search(r"last run (success|running|queued) at \S+, next run \S+, (\d+) succeeded, 0 failed", line), line
    assert int(re.search(r"(\d+) succeeded", line).group(1)) >= 2, line

    undeployed = dls_airflow.orch("undeploy", "per")
    assert undeployed.returncode == 0, undeployed.stdout + undeployed.stderr
    assert dls_airflow.client().dag(DAG) is None
    assert not (dls_airflow.home / "dls" / "periodic" / f"{DAG}.json").exists()
    assert sim_site.ssh("login", "test -e /data/periodic-input").returncode == 1
    # no run afterwards: past another interval and parse, the DAG is still gone and the target not back
    time.sleep(25)
    assert dls_airflow.client().dag(DAG) is None
    assert sim_site.ssh("login", "test -e /data/periodic-input").returncode == 1
