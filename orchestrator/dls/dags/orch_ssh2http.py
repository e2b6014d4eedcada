"""Airflow DAG orch_ssh2http: an upload from a host to an HTTP(S) URL.

conf: `source` on `host` (`port`, `login`, `vault_id` or `key_file`), `url` (or `target`): a file is sent as it
is, a folder as a .tar.gz to a URL ending in .tar.gz or .tgz; `method` PUT (the default; read back to check
it) or POST; `ssh_options`. Returns {files, checksum, target_path} (the source's manifest; target_path the URL).
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_ssh2http", "ssh2http", __doc__)
