"""slurm.conf and cgroup.conf of the single-node cluster on the login host (pure, but
for reading the node's hardware from `slurmd -C`)."""

from __future__ import annotations

from orchestrator.sim.errors import SimError
from orchestrator.sim.proc import run

# Slurm 22.05's slurmd always loads a cgroup plugin, and the default (autodetect) fails
# because the host's /sys (from `ip netns exec`) has no cgroup mounts. cgroup/v1 loads
# and is never used with proctrack/linuxproc and task/none.
CGROUP_CONF = "CgroupPlugin=cgroup/v1\n"


def node_hardware() -> str:
    """`slurmd -C`'s node line without NodeName: CPUs=.. Boards=.. ... RealMemory=..

    The hosts share the machine's CPUs and memory, so it is read once on the machine.
    """
    out = run(["slurmd", "-C"]).stdout.splitlines()
    fields = out[0].split() if out else []
    if not fields or not fields[0].startswith("NodeName="):
        raise SimError(f"unexpected `slurmd -C` output: {out[:1]}")
    return " ".join(fields[1:])


def render_slurm_conf(cluster: str, node: str, hardware: str) -> str:
    """A one-node cluster: `node` (== `hostname -s` of the login host) is both controller
    and compute node; no cgroups, no accounting daemon."""
    return f"""\
# Single-node Slurm cluster of the simulated site {cluster} (written by orch sim up).
ClusterName={cluster}
SlurmctldHost={node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroups inside a simulated host (see cgroup.conf).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd, so no sacct: callers poll squeue / scontrol show job, and every
# finished job also gets a line in the jobcomp file.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
# Keep finished jobs visible to `scontrol show job` for an hour (default 300 s).
MinJobAge=3600
NodeName={node} {hardware} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
