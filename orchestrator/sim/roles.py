"""What each kind of host is for: its extra files and the services it runs.

login   Slurm (munged, slurmctld, slurmd), /scratch as work dir, /scratch/images, /data
data    datasets in /data, served over HTTP on DATA_PORT to the site network
builder images are built here: /opt/images
Any other host name gives a plain host. The folders belong to the cluster user (account), as a
project space does on a real cluster; the daemons run as root (munged as munge).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.sim.account import CLUSTER_USER
from orchestrator.sim.errors import SimError
from orchestrator.sim.layout import HostLayout, SiteLayout, SitePaths
from orchestrator.sim.seed import SeedEntry
from orchestrator.sim.slurmconf import CGROUP_CONF, node_hardware, render_slurm_conf

DATA_PORT = 8080
WORK_DIR = "/scratch"
IMAGE_DIR = "/scratch/images"
DATA_DIR = "/data"
BUILDER_IMAGE_DIR = "/opt/images"
HOST_PYTHON = "/usr/bin/python3"
SERVICES_SCRIPT = Path(__file__).with_name("hostservices.py")

HostExec = Callable[[Sequence[str], str | None], subprocess.CompletedProcess[str]]


def role_entries(site: SiteLayout, host: HostLayout, paths: SitePaths) -> list[SeedEntry]:
    if host.name == "login":
        conf = render_slurm_conf(site.name, host.hostname, node_hardware())
        return [
            SeedEntry(WORK_DIR, 0o755, owner=CLUSTER_USER.name),
            SeedEntry(IMAGE_DIR, 0o755, owner=CLUSTER_USER.name),
            # data_dir is the cluster's data area too (a topology stages datasets in there).
            SeedEntry(DATA_DIR, 0o755, owner=CLUSTER_USER.name),
            SeedEntry("/etc/slurm/slurm.conf", 0o644, conf.encode()),
            SeedEntry("/etc/slurm/cgroup.conf", 0o644, CGROUP_CONF.encode()),
            # munged refuses a key or directory that others can read.
            SeedEntry("/etc/munge", 0o700, owner="munge"),
            SeedEntry("/etc/munge/munge.key", 0o400, paths.munge_key.read_bytes(), owner="munge"),
        ]
    if host.name == "data":
        return [SeedEntry(DATA_DIR, 0o755, owner=CLUSTER_USER.name)]
    if host.name == "builder":
        return [SeedEntry(BUILDER_IMAGE_DIR, 0o755, owner=CLUSTER_USER.name)]
    return []


def start_services(host: HostLayout, host_exec: HostExec) -> None:
    """Start the host's services unless they run already (idempotent, fast when up)."""
    if host.name == "login":
        args = ["slurm"]
    elif host.name == "data":
        args = ["http", DATA_DIR, str(DATA_PORT)]
    else:
        return
    # The script goes in on stdin: the host runs it with its own Python and nothing of
    # the orchestrator package is needed inside.
    done = host_exec([HOST_PYTHON, "-I", "-", *args], SERVICES_SCRIPT.read_text())
    if done.returncode != 0:
        raise SimError(
            f"starting {' '.join(args[:1])} on {host.hostname} failed:\n"
            + (done.stdout + done.stderr).strip()
        )
