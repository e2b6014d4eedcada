"""What the executor gives Ansible: per-operation inventory aliases with their variables and connection
settings, and the environment of every run. Pure functions: nothing here spawns anything."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Target:
    """Where an operation runs: a host reached over SSH, or the controller itself."""

    name: str  # the Compute node (or "orchestrator")
    address: str
    user: str | None = None
    port: int | None = None
    key_file: str | None = None
    known_hosts_file: str | None = None
    python: str | None = None
    key_credential: str | None = None  # an orch credential whose key is written out only for the run

    @property
    def is_local(self) -> bool:
        return self.address in LOCAL_ADDRESSES


@dataclass(frozen=True)
class OperationRequest:
    alias: str  # unique inventory alias for this operation (e.g. the step id, sanitized)
    playbook: str
    target: Target
    variables: Mapping[str, Any]
    label: str = ""  # "node Standard.create", for messages


class _Unsafe(str):
    """A string Ansible must not template: operation inputs are data, not Jinja."""


def _unsafe_representer(dumper: yaml.SafeDumper, value: _Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(value))


class _InventoryDumper(yaml.SafeDumper):
    pass


_InventoryDumper.add_representer(_Unsafe, _unsafe_representer)


_RESOLVER = yaml.resolver.Resolver()
_TEXT = "tag:yaml.org,2002:str"


def _mark_unsafe(value: Any) -> Any:
    if isinstance(value, str):
        # Ansible (2.19) reads the text of an `!unsafe` scalar as if it were plain, quoted or not: `!unsafe
        # 'true'` would be a boolean, `!unsafe '3'` a number, `!unsafe 'null'` and `!unsafe ''` nothing. Such
        # text is left untagged (quoted, it stays text): it holds no template marker anyway, since a marker
        # makes YAML read it as text
        if _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != _TEXT:
            return value
        return _Unsafe(value)
    if isinstance(value, dict):
        return {k: _mark_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_unsafe(v) for v in value]
    return value


def alias_for(step_id: str) -> str:
    return "op_" + re.sub(r"[^A-Za-z0-9_]", "_", step_id)


MASTER_OPTIONS = ("ControlMaster=auto", "ControlPersist=120s")
KEY_CREDENTIAL = "orch_key_credential"  # in ORCH_HOSTS, until the executor writes the key out
CREDENTIAL_NAME = "orch_credential"  # in ORCH_HOSTS once it has: the credential the key file holds


def connection_vars(target: Target) -> dict[str, Any]:
    if target.is_local:
        # the controller's own interpreter: discovery can pick a shim for a Python that is not installed
        return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    result: dict[str, Any] = {
        "ansible_connection": "ssh",
        "ansible_host": target.address,
        # In place of Ansible's default ssh_args (-C -o ControlMaster=auto -o ControlPersist=60s), which come
        # first on ssh's command line: ssh keeps an option's first value, so a ControlPersist among the
        # common args was ignored and a host idle for 60 s got a new connection.
        "ansible_ssh_args": "-C " + " ".join(f"-o {o}" for o in MASTER_OPTIONS),
        "ansible_ssh_common_args": " ".join(f"-o {o}" for o in _common_options(target)),
        "ansible_python_interpreter": target.python or "/usr/bin/python3",
    }
    if target.user:
        result["ansible_user"] = target.user
    if target.port:
        result["ansible_port"] = int(target.port)
    if target.key_file:
        result["ansible_ssh_private_key_file"] = target.key_file
    elif target.key_credential:
        # its key exists only while a batch runs: the executor puts the file in place of this name
        result[KEY_CREDENTIAL] = target.key_credential
    return result


def credentials_of_hosts(variables: Mapping[str, Any]) -> list[str]:
    """The orch credentials named in an operation's ORCH_HOSTS (hosts a playbook may reach with add_host)."""
    hosts = variables.get("ORCH_HOSTS") or {}
    return [entry[KEY_CREDENTIAL] for entry in hosts.values()
            if isinstance(entry, Mapping) and entry.get(KEY_CREDENTIAL)]


def with_key_files(variables: Mapping[str, Any], keys: Mapping[str, Any]) -> Mapping[str, Any]:
    """The variables with each ORCH_HOSTS entry's credential name replaced by its key file for this run
    (an entry whose key could not be written keeps no key: only a playbook that goes there fails)."""
    hosts = variables.get("ORCH_HOSTS") or {}
    if not any(isinstance(e, Mapping) and e.get(KEY_CREDENTIAL) for e in hosts.values()):
        return variables
    updated = {}
    for name, entry in hosts.items():
        credential = entry.get(KEY_CREDENTIAL) if isinstance(entry, Mapping) else None
        if credential:
            # the name stays (not a secret): a mover that hands the move to a service names the key to it
            without = {**{k: v for k, v in entry.items() if k != KEY_CREDENTIAL}, CREDENTIAL_NAME: credential}
            if credential in keys:
                without["ansible_ssh_private_key_file"] = str(keys[credential])
            updated[name] = without
        else:
            updated[name] = entry
    return {**variables, "ORCH_HOSTS": updated}


def build_inventory(requests: list[OperationRequest]) -> dict[str, Any]:
    hosts = {}
    for request in requests:
        host_vars = _mark_unsafe(dict(request.variables))
        host_vars.update(connection_vars(request.target))
        hosts[request.alias] = host_vars
    return {"all": {"hosts": hosts}}


def ansible_environment(control_dir: str, forks: int) -> dict[str, str]:
    """Settings for every run: host keys checked, pipelining and ControlPersist on, quiet."""
    venv_bin = os.path.dirname(sys.executable)
    return {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
        "ANSIBLE_SSH_CONTROL_PATH": "%(directory)s/%%C",  # ssh's own hash, so that master_args() finds it
        "ANSIBLE_SSH_RETRIES": "0",
        "ANSIBLE_FORKS": str(forks),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SYSTEM_WARNINGS": "False",
        "ANSIBLE_COMMAND_WARNINGS": "False",
        "ANSIBLE_GATHERING": "explicit",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "True",
    }


def write_inventory(path: str, requests: list[OperationRequest]) -> None:
    """0600 from the first byte: it holds the operations' variables."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.dump(build_inventory(requests), f, Dumper=_InventoryDumper)


def _common_options(target: Target) -> list[str]:
    options = ["IdentitiesOnly=yes", "StrictHostKeyChecking=yes", "BatchMode=yes", "ConnectTimeout=10"]
    if target.known_hosts_file:
        options.append(f"UserKnownHostsFile={target.known_hosts_file}")
    return options


def master_args(target: Target, control_dir: str) -> list[str]:
    """ssh options that reach target's ControlPersist master exactly as Ansible's runs do."""
    options = [*MASTER_OPTIONS, f"ControlPath={control_dir}/%C", *_common_options(target)]
    if target.port:
        options.append(f"Port={int(target.port)}")
    if target.user:
        options.append(f"User={target.user}")
    if target.key_file:
        options.append(f"IdentityFile={target.key_file}")
    return [arg for option in options for arg in ("-o", option)]
