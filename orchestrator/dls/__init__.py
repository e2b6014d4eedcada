"""Data logistics on Apache Airflow (issue 17).

- `local`: a local Airflow (`orch dls up|status|down`) for tests and first tries, run from its own virtual
  environment; `cli` is its command group, plugged into `orch` by an entry point.
- `client`: a small REST client for Airflow 3 (/api/v2) and Airflow 2 (/api/v1), with the command line the
  mover playbooks call (`python -m orchestrator.dls.client ...`).
- `dags/`: the DAGs the local Airflow loads (the package folder is its DAG folder).
"""
