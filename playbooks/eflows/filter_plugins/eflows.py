"""Ansible filters for the eFlows4HPC playbooks: the job launch command (one renderer for every
launcher, so the enqueue_compss line and the sbatch/local ones cannot drift apart), ${name}
substitution of workflow inputs, where a data place is, which plug-in folders there are, and what a
`catalogue:ID` source is.

Functions of their arguments (no Ansible imports; only `plugs` and `catalogue_source` read the disk), so tests
call them directly. The catalogue filters use orch's own package (the controller's Ansible runs in orch's
Python): one reader of records for the CLI, the service and the playbooks."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(value, inputs):
    """Replace ${name} by the workflow input `name` (a list is substituted item by item)."""
    if isinstance(value, list):
        return [substitute(v, inputs) for v in value]

    def one(match):
        name = match.group(1)
        if name not in inputs:
            raise ValueError(f"${{{name}}} is not a workflow input (known: {', '.join(sorted(inputs))})")
        return str(inputs[name])

    return _PLACEHOLDER.sub(one, str(value))


def launch_command(launcher, command, arguments, image_path="", python="python3", num_nodes=1, qos="",
                   compss_options=(), modules=()):
    """The shell line that starts the workflow.

    enqueue_compss: the COMPSs launcher (it calls sbatch itself), with the container image when the
    image is a container, else the image's folder on the PYTHONPATH.
    sbatch / local / application: the application run by the installed runtime's Python, with the image's
    packages (the job's body, for any launcher that submits through its scheduler's own submit).
    """
    container = image_path.endswith((".sif", ".img"))
    # in a container image the application's path is the one inside the container
    app = f"{image_path}/{command}" if image_path and not container else command
    args = " ".join(shlex.quote(str(a)) for a in arguments)
    prefix = "".join(f"module load {shlex.quote(m)} && " for m in modules)
    if launcher == "enqueue_compss":
        parts = ["enqueue_compss", f"--num_nodes={int(num_nodes)}"]
        if qos:
            parts.append(f"--qos={shlex.quote(qos)}")
        if container:
            parts.append(f"--container_image={shlex.quote(image_path)}")
        else:
            parts.append(f"--pythonpath={shlex.quote(image_path + '/site-packages')}")
        parts += [shlex.quote(str(o)) for o in compss_options]
        parts.append("--lang=python")
        parts.append(shlex.quote(app))
        return prefix + " ".join(parts) + (f" {args}" if args else "")
    if launcher in ("application", "sbatch", "local"):
        env = f"PYTHONPATH={shlex.quote(image_path + '/site-packages')} " if image_path else ""
        return prefix + f"{env}{shlex.quote(python)} {shlex.quote(app)}" + (f" {args}" if args else "")
    raise ValueError(f"unknown launcher '{launcher}' (enqueue_compss, sbatch or local)")


def data_place(place, hosts):
    """'HOST:/path' (HOST a Compute of the topology), a URL, or a path on the controller.

    A path's repeated and trailing slashes are dropped (the same place, written one way); any other byte,
    newline included, is part of the name."""
    place = str(place)
    if re.match(r"^https?://", place):
        name = place.rstrip("/").rsplit("/", 1)[-1]
        if name in ("", ".", "..") or "\n" in place:
            raise ValueError(f"{place!r}: a URL must name a file (its last path segment)")
        return {"kind": "url", "url": place, "path": name, "host": ""}
    match = re.fullmatch(r"([A-Za-z0-9_.-]+):(/.*)", place, re.DOTALL)
    if match:
        host, path = match.groups()
        if host not in hosts:
            raise ValueError(f"'{place}': {host} is not a host of this topology ({', '.join(sorted(hosts))})")
        return {"kind": "ssh", "host": host, "path": _normal(path), "url": ""}
    if not place.startswith("/"):
        raise ValueError(f"'{place}': a controller path must be absolute")
    return {"kind": "local", "host": "", "path": _normal(place), "url": ""}


def _normal(path):
    return "/" + "/".join(part for part in path.split("/") if part)


def target_problem(path):
    """Why `path` cannot be a data target, or '' if it can. A target is replaced by the dataset, so it must
    be an absolute path below a top-level folder, without '.' or '..' components."""
    path = str(path)
    parts = path.split("/")
    if not path.strip():
        return "an empty path is refused (the target is replaced by the dataset)"
    if not path.startswith("/"):
        return "a relative path is refused"
    if any(part in (".", "..") for part in parts):
        return "a path with '.' or '..' components is refused"
    if len([part for part in parts if part]) < 2:
        return "/ or a top-level folder is refused (the target is replaced by the dataset)"
    return ""


def plugs(folder, required):
    """The names of the subfolders of `folder` that hold every file of `required`, sorted: the schedulers of
    playbooks/jobs/schedulers/, the movers of playbooks/eflows/movers/ (a plug-in is a folder, not an edit)."""
    base = Path(str(folder))
    if not base.is_dir():
        return []
    return sorted(entry.name for entry in base.iterdir()
                  if entry.is_dir() and all((entry / name).is_file() for name in required))


def catalogue_file(deployment_dir):
    """The catalogue's file for the deployment whose folder is `deployment_dir` ($ORCH_HOME/deployments/NAME):
    $ORCH_CATALOGUE, else $ORCH_HOME/catalogue.yaml, as orch's API decides it."""
    from orchestrator.catalogue import catalogue_path

    if not str(deployment_dir or ""):
        return ""
    return str(catalogue_path(Path(str(deployment_dir)).parent.parent))


def catalogue_source(source, catalogue, hosts, node):
    """{source, id, sha256, problem}: a source `catalogue:ID` becomes the record's first location this
    topology can reach (a URL, HOST:/path with HOST one of its hosts, a controller path); any other
    source stays as it is. `problem` (naming the node and the id) says why it cannot be resolved.
    The values are the record's data: they are never templated or given to a shell."""
    from orchestrator.catalogue import YamlCatalogue, catalogue_id, resolve_source

    if catalogue_id(source) is None:
        return resolve_source(source, str(node), None, lambda place: "")

    def place_problem(place):
        try:
            data_place(place, hosts or {})
        except ValueError as exc:
            return str(exc)
        return ""

    store = YamlCatalogue(Path(str(catalogue))) if str(catalogue or "") else None
    return resolve_source(source, str(node), store, place_problem)


class FilterModule:
    def filters(self):
        return {"eflows_substitute": substitute, "eflows_launch_command": launch_command,
                "eflows_data_place": data_place,
                "eflows_target_problem": target_problem, "eflows_plugs": plugs,
                "eflows_catalogue_file": catalogue_file, "eflows_catalogue_source": catalogue_source}
