"""site.yaml: flat keys a TOSCA topology takes as inputs."""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator.sim import roles
from orchestrator.sim.account import CLUSTER_USER
from orchestrator.sim.layout import SiteLayout, SitePaths
from orchestrator.sim.state import write_atomic


def site_values(site: SiteLayout, paths: SitePaths) -> dict[str, Any]:
    names = {h.name for h in site.hosts}
    values: dict[str, Any] = {"site_name": site.name, "scheduler": "slurm",
                              "login_host": str(site.host("login").address)}
    if "data" in names:
        values["data_host"] = str(site.host("data").address)
    if "builder" in names:
        values["builder_host"] = str(site.host("builder").address)
    values.update(
        ssh_user=CLUSTER_USER.name,  # unprivileged, as on a real cluster
        ssh_port=22,
        ssh_key_file=str(paths.client_key),
        known_hosts_file=str(paths.known_hosts),
        work_dir=roles.WORK_DIR,
        image_dir=roles.IMAGE_DIR,
    )
    if "data" in names:
        values["data_dir"] = roles.DATA_DIR
        values["data_url"] = f"http://{site.host('data').address}:{roles.DATA_PORT}"
    if "builder" in names:
        values["build_dir"] = roles.BUILDER_IMAGE_DIR
    values["python_interpreter"] = roles.HOST_PYTHON
    return values


def write_site_file(site: SiteLayout, paths: SitePaths) -> None:
    text = yaml.safe_dump(site_values(site, paths), sort_keys=False, default_flow_style=False)
    write_atomic(paths.site_file, f"# orch sim site {site.name}: topology inputs\n{text}")


def read_site_file(paths: SitePaths) -> dict[str, Any]:
    return yaml.safe_load(paths.site_file.read_text()) or {}
