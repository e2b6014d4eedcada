"""A simulated HPC site on this machine: SSH hosts in network namespaces and a Slurm cluster.

    from orchestrator.sim import up, status, down
    site_file = up("orchsim")          # ~/.local/share/orch/sim/orchsim/site.yaml
    down("orchsim")

Needs root, iproute2, util-linux, openssh-server and slurm-wlm + munge.
"""

from orchestrator.sim.errors import SimError
from orchestrator.sim.paths import orch_home, site_directory
from orchestrator.sim.prereq import check_prerequisites, require_prerequisites
from orchestrator.sim.site import DEFAULT_HOSTS, DEFAULT_NAME, down, host_exec, host_pid, status, up

__all__ = [
    "DEFAULT_HOSTS",
    "DEFAULT_NAME",
    "SimError",
    "check_prerequisites",
    "down",
    "host_exec",
    "host_pid",
    "orch_home",
    "require_prerequisites",
    "site_directory",
    "status",
    "up",
]
