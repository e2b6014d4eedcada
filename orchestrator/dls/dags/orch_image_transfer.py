"""Airflow DAG orch_image_transfer: an image from the image service onto a host.

conf: `image_id` (the image file's name), `url` (the service's download URL, e.g. .../images/download/: the
image is read at url + image_id), `target` (the image folder, on `host`: `port`, `login`, `vault_id` or
`key_file`; only the image's file in it is replaced, other images stay), `ssh_options`.
Returns {files, checksum, target_path} (target_path the image file).
"""

from orchestrator.dls.dags._transfer import transfer_dag

transfer_dag("orch_image_transfer", "image_transfer", __doc__)
