"""DAG orch_check: a tiny run for the client's and the local Airflow's tests.

conf: {"sleep": seconds (default 0), "fail": "message" (optional)}: sleeps, then fails with that message if
given; returns {"slept": seconds}. Written for Airflow 3's task SDK and Airflow 2's decorators alike.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

try:
    from airflow.sdk import dag, get_current_context, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.operators.python import get_current_context


class CheckFailed(Exception):
    """The failure the caller asked for."""


@dag(dag_id="orch_check", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False,
     tags=["orch"], doc_md=__doc__)
def orch_check():
    @task(task_id="check")
    def check() -> dict:
        conf = get_current_context()["dag_run"].conf or {}
        seconds = conf.get("sleep", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise CheckFailed(f"conf.sleep must be a number of seconds >= 0, not {seconds!r}")
        time.sleep(seconds)
        if conf.get("fail"):
            raise CheckFailed(str(conf["fail"]))
        return {"slept": seconds}

    check()


orch_check()
