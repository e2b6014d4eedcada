"""Airflow DAG orch_ssh2ssh: a dataset from one host to another over SSH, streamed through this machine.

conf: `source` (a file or folder) on `source_host` (`source_port`, `source_login`, `source_vault_id` or
`source_key_file`: each defaults to the target host's), `target` (a folder, replaced by the dataset) on `host`
(`port`, `login`, `vault_id` or `key_file`), `ssh_options`, `force`. Returns {files, checksum, target_path}.
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_ssh2ssh", "ssh2ssh", __doc__)
