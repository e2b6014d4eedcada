"""Ansible filters of the Airflow mover (playbooks/eflows/movers/airflow/): which of orch's DAGs moves a
dataset between two places, and the run's conf, built from the places and the topology's connection
settings (ORCH_HOSTS). A function of its arguments, no Ansible import: tests call it directly.

The conf carries no secret: a host's key is named (`vault_id`, the orch credential the DAG reads at run
time) or, for a host whose key is a file on this machine, given by its path (`key_file`)."""

from __future__ import annotations

from pathlib import Path

# the DAGs by direction: onto a cluster host, and off one (orchestrator/dls/dags/)
INTO_CLUSTER, OUT_OF_CLUSTER = "orch_stagein", "orch_stageout"


def _host(entry, prefix=""):
    entry = entry or {}
    conf = {f"{prefix}host": entry.get("ansible_host") or "", f"{prefix}port": int(entry.get("ansible_port") or 22),
            f"{prefix}login": entry.get("ansible_user") or ""}
    if entry.get("orch_credential"):
        conf[f"{prefix}vault_id"] = entry["orch_credential"]
    elif entry.get("ansible_ssh_private_key_file"):
        conf[f"{prefix}key_file"] = entry["ansible_ssh_private_key_file"]
    return conf


def dls_request(src, dst, hosts, node, deployment, register=False, title="", dag="", sha256=""):
    """{dag, conf, problem}: the DAG run that moves `src` to `dst` (places from eflows_data_place); `sha256`:
    the catalogue record's, which the data must match (the DAG checks it)."""
    hosts = hosts or {}
    if dst["kind"] == "ssh":
        entry = hosts.get(dst["host"]) or {}
        conf = {**_host(entry), "target": dst["path"], "ssh_options": entry.get("ansible_ssh_common_args") or ""}
        if src["kind"] == "url":
            conf["source"] = src["url"]
        elif src["kind"] == "ssh":
            conf.update(_host(hosts.get(src["host"]), "source_"), source=src["path"])
        else:
            conf["source"] = src["path"]
        if sha256:
            conf["sha256"] = sha256
        return {"dag": dag or INTO_CLUSTER, "conf": conf, "problem": ""}
    if src["kind"] == "ssh":
        entry = hosts.get(src["host"]) or {}
        conf = {**_host(entry), "source": src["path"], "ssh_options": entry.get("ansible_ssh_common_args") or "",
                "target": dst["url"] if dst["kind"] == "url" else dst["path"],
                "deployment": deployment, "node": node, "register": bool(register), "mid": title or ""}
        return {"dag": dag or OUT_OF_CLUSTER, "conf": conf, "problem": ""}
    return {"dag": "", "conf": {}, "problem": f"{node}: the Airflow mover moves data onto or off a host of the "
                                              "topology (HOST:/path); neither the source nor the target is one"}


def dls_service_args(deployment_dir, url=""):
    """The client's arguments that name the service: `--url URL` (the user and password from orch's
    environment, ORCH_DLS_USERNAME and ORCH_DLS_PASSWORD) or the local one's file, written by `orch dls up`
    in the orch home whose deployment this is ($ORCH_HOME/deployments/NAME)."""
    if url:
        return ["--url", str(url)]
    return ["--service", str(Path(str(deployment_dir)).parent.parent / "dls" / "service.json")]


class FilterModule:
    def filters(self):
        return {"eflows_dls_request": dls_request, "eflows_dls_service_args": dls_service_args}
