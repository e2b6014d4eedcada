"""Airflow DAG orch_http2ssh: an HTTP(S) download onto a host (the published types' `plainhttp2ssh` conf).

conf: `url` (a .tar.gz or .tgz is unpacked, any other file kept as it is), `target` (a folder, replaced by the
dataset) on `host` (`port`, `login`, `vault_id` or `key_file`), `force`, `ssh_options`.
Returns {files, checksum, target_path}.
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_http2ssh", "http2ssh", __doc__)
