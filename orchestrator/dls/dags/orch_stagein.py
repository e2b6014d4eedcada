"""Airflow DAG orch_stagein: a dataset of orch's data catalogue onto a host, by its id.

conf: `oid` (a record of the catalogue, $ORCH_CATALOGUE or $ORCH_HOME/catalogue.yaml: its first location, a
URL, HOST:/path or a path on this machine; the data must arrive with the record's sha256), or `source`
instead (a URL, a path on `source_host`, or a path on this machine); `target` (a folder, replaced by the
dataset) on `host` (`port`, `login`, `vault_id` or `key_file`), `force`, `ssh_options`.
Returns {files, checksum, target_path}.
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_stagein", "stagein", __doc__)
