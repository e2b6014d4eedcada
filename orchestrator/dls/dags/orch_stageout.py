"""Airflow DAG orch_stageout: a result from a host to a URL, another host or this machine.

conf: `source` on `host` (`port`, `login`, `vault_id` or `key_file`); `target`: a URL (an upload, as
orch_ssh2http), a path on `target_host` (`target_port`, `target_login`, `target_vault_id` or
`target_key_file`, each defaulting to the source host's), or a path on this machine; `register` true: the
result becomes a record of orch's catalogue (`mid` its title; `deployment`, `node` name it).
Returns {files, checksum, target_path} (and the record's `id` when registered).
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_stageout", "stageout", __doc__)
