"""What every transfer DAG of orch is: one task that makes the transfer its run's conf describes
(orchestrator/dls/transfers.py) and returns {files, checksum, target_path}, which Airflow keeps as the task's
XCom and the Airflow mover reads back. No schedule (runs are triggered), conf kept in its JSON types
(render_template_as_native_obj), no retries: a failed transfer is told at once, by the task's log, whose
error names the source or the target.

Written for Airflow 3's task SDK, and Airflow 2's decorators where that is not there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

try:
    from airflow.sdk import dag, get_current_context, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.operators.python import get_current_context

START = datetime(2024, 1, 1, tzinfo=UTC)


def transfer_dag(dag_id: str, kind: str, doc: str) -> Any:
    """The DAG `dag_id` whose task `transfer` runs transfers.run(kind, conf)."""

    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False, tags=["orch", "transfer"], doc_md=doc,
         render_template_as_native_obj=True, default_args={"retries": 0}, max_active_tasks=1)
    def transfer_dag_() -> None:
        @task(task_id="transfer")
        def transfer() -> dict[str, Any]:
            from orchestrator.dls.transfers import run  # at run time: parsing the DAG file stays cheap

            conf = get_current_context()["dag_run"].conf or {}
            return run(kind, conf)

        transfer()

    return transfer_dag_()
