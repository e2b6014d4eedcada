"""Where a transfer reads and writes, from a DAG run's conf: pure parsing, no network, no Airflow.

The conf is the one the published eFlows4HPC DLS types send (`target`, `host`, `port`, `login`, `vault_id`,
`source`, `url`, `force`, `oid`, `mid`, `register`, `image_id`), plus orch's own keys: `source_host`,
`source_port`, `source_login`, `source_vault_id`, `source_key_file` (the source host of ssh → ssh; each
defaults to the target host's value), `key_file` (a key FILE on this machine instead of `vault_id`),
`ssh_options` and `method` (PUT or POST, for an upload). The DLS playbooks send every value as text (a port
"22", a force "True"): both forms are read.

`ssh_options` are OpenSSH `-o` options (a list, or one string such as ORCH_HOSTS' ansible_ssh_common_args);
what they may say about host keys, which paramiko checks itself:
- StrictHostKeyChecking=yes (the default, like ssh in batch mode; `ask` reads as yes): the host's key must be
  in a known hosts file; =accept-new: an unknown host is accepted (not saved), a changed key refused; =no
  (or off): any key is accepted.
- UserKnownHostsFile=FILE [FILE...] (default ~/.ssh/known_hosts; /dev/null: none), GlobalKnownHostsFile=...
- ConnectTimeout=SECONDS.
- accepted and without effect (they tune ssh's own connection, which is not used): IdentitiesOnly, BatchMode,
  ControlMaster, ControlPersist, ControlPath, IdentityAgent, LogLevel, Compression, ServerAliveInterval,
  ServerAliveCountMax, PasswordAuthentication, PubkeyAuthentication, ForwardAgent.
Any other option is refused by name: silently ignoring one could weaken what its writer meant.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TransferError(Exception):
    """A transfer that could not be done: the message names the source or the target (the user sees it)."""


@dataclass(frozen=True)
class HostKeys:
    """How a host's key is checked: `yes`, `accept-new` or `no` (StrictHostKeyChecking), against these files."""

    checking: str = "yes"
    known_hosts: tuple[str, ...] = ("~/.ssh/known_hosts",)
    connect_timeout: float = 30.0


@dataclass(frozen=True)
class SshHost:
    address: str
    port: int = 22
    login: str = ""
    vault_id: str = ""
    key_file: str = ""
    host_keys: HostKeys = HostKeys()

    def describe(self) -> str:
        where = f"{self.login}@{self.address}" if self.login else self.address
        return where if self.port == 22 else f"{where}:{self.port}"


@dataclass(frozen=True)
class SshPlace:
    host: SshHost
    path: str

    def describe(self) -> str:
        return f"{self.host.describe()}:{self.path}"


@dataclass(frozen=True)
class UrlPlace:
    url: str
    method: str = "PUT"  # for an upload

    @property
    def name(self) -> str:
        """The file's name: the URL's last path segment, as the embedded mover names it."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_archive(self) -> bool:
        """A .tar.gz (or .tgz) is unpacked at the target; any other file is kept as it is."""
        return re.search(r"\.(tar\.gz|tgz)$", self.url) is not None

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class LocalPlace:
    """A path on this machine (the one the transfer runs on)."""

    path: str

    def describe(self) -> str:
        return f"{self.path} (on this machine)"


Place = SshPlace | UrlPlace | LocalPlace

_IGNORED = {"identitiesonly", "batchmode", "controlmaster", "controlpersist", "controlpath", "identityagent",
            "loglevel", "compression", "serveraliveinterval", "serveralivecountmax", "passwordauthentication",
            "pubkeyauthentication", "forwardagent"}
_CHECKING = {"yes": "yes", "ask": "yes", "accept-new": "accept-new", "no": "no", "off": "no"}


def host_keys(options: Any) -> HostKeys:
    """HostKeys from `ssh_options` (see the module's docstring); an option it does not know is refused."""
    if options in (None, "", []):
        return HostKeys()
    if isinstance(options, str):
        items = [w for w in shlex.split(options) if w != "-o"]
    elif isinstance(options, list | tuple):
        items = [re.sub(r"^-o\s*", "", str(o).strip()) for o in options]
    else:
        raise TransferError(f"conf ssh_options: a list of ssh -o options, not {type(options).__name__}")
    checking, files, globals_, timeout = "yes", None, [], 30.0
    for item in (i for i in items if i):
        match = re.fullmatch(r"([A-Za-z]+)\s*[= ]\s*(.+)", item.strip(), re.DOTALL)
        if not match:
            raise TransferError(f"conf ssh_options: {item!r} is not an option=value")
        name, value = match.group(1).lower(), match.group(2).strip()
        if name == "stricthostkeychecking":
            if value.lower() not in _CHECKING:
                raise TransferError(f"conf ssh_options: StrictHostKeyChecking={value} (yes, accept-new or no)")
            checking = _CHECKING[value.lower()]
        elif name == "userknownhostsfile":
            files = [f for f in shlex.split(value) if f not in ("/dev/null", "none")]
        elif name == "globalknownhostsfile":
            globals_ = [f for f in shlex.split(value) if f not in ("/dev/null", "none")]
        elif name == "connecttimeout":
            try:
                timeout = float(value)
            except ValueError:
                raise TransferError(f"conf ssh_options: ConnectTimeout={value} is not a number") from None
        elif name not in _IGNORED:
            raise TransferError(f"conf ssh_options: {match.group(1)} is not an option orch's transfers honour "
                                "(StrictHostKeyChecking, UserKnownHostsFile, GlobalKnownHostsFile, ConnectTimeout)")
    known = tuple(HostKeys().known_hosts if files is None else files) + tuple(globals_)
    return HostKeys(checking=checking, known_hosts=known, connect_timeout=timeout)


def target_problem(path: str) -> str:
    """Why `path` cannot be a dataset's target, or '' if it can: the same rules as the embedded mover's
    (playbooks/eflows/filter_plugins/eflows.py, target_problem), since a target is replaced by the dataset."""
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


def normal_path(path: str) -> str:
    """Repeated and trailing slashes dropped, as the embedded mover writes a place."""
    return "/" + "/".join(part for part in path.split("/") if part)


def flag(conf: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean from conf: true/false, or the text a DLS playbook sends ("True", "false", "yes", "0", "")."""
    value = conf.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", "none"):
        return False
    raise TransferError(f"conf {key}: {value!r} is not true or false")


def text(conf: Mapping[str, Any], key: str) -> str:
    """A required text value of conf."""
    value = conf.get(key)
    if value is None or not str(value).strip():
        raise TransferError(f"conf {key} is missing")
    return str(value)


def ssh_host(conf: Mapping[str, Any], prefix: str = "", fallback: SshHost | None = None) -> SshHost:
    """The host `<prefix>host` of conf with its port, login and key; unset values from `fallback`."""
    address = conf.get(f"{prefix}host")
    if not address and fallback is None:
        raise TransferError(f"conf {prefix}host is missing")
    base = fallback or SshHost(address="")
    port = conf.get(f"{prefix}port")
    if port in (None, ""):
        port_number = base.port
    else:
        try:
            port_number = int(str(port).strip())
        except ValueError:
            raise TransferError(f"conf {prefix}port: {port!r} is not a port number") from None
        if not 0 < port_number < 65536:
            raise TransferError(f"conf {prefix}port: {port_number} is not a port number")
    own_key = conf.get(f"{prefix}vault_id") or conf.get(f"{prefix}key_file")
    return SshHost(
        address=str(address or base.address),
        port=port_number,
        login=str(conf.get(f"{prefix}login") or base.login),
        # a host's key comes as a whole: its own vault_id or key_file, else the fallback's
        vault_id=str(conf.get(f"{prefix}vault_id") or "") if own_key else base.vault_id,
        key_file=str(conf.get(f"{prefix}key_file") or "") if own_key else base.key_file,
        host_keys=host_keys(conf.get("ssh_options")),
    )


def ssh_target(conf: Mapping[str, Any], key: str = "target") -> SshPlace:
    """The target path on conf's `host`, refused as the embedded mover refuses it."""
    path = text(conf, key)
    problem = target_problem(path)
    if problem:
        raise TransferError(f"target {path}: {problem}")
    return SshPlace(ssh_host(conf), normal_path(path))


def source_path(conf: Mapping[str, Any], key: str = "source") -> str:
    path = text(conf, key)
    if not path.startswith("/"):
        raise TransferError(f"source {path}: a source path must be absolute")
    return normal_path(path)


def url_place(value: str, key: str, method: str = "PUT") -> UrlPlace:
    if not re.match(r"^https?://", value):
        raise TransferError(f"conf {key}: {value!r} is not an http(s) URL")
    if "\n" in value or UrlPlace(value).name in ("", ".", ".."):
        raise TransferError(f"conf {key}: {value!r}: a URL must name a file (its last path segment)")
    method = method.upper()
    if method not in ("PUT", "POST"):
        raise TransferError(f"conf method: {method} (an upload is a PUT or a POST)")
    return UrlPlace(value, method)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^https?://", value) is not None


# -- what each DAG moves, from its conf ----------------------------------------------------------------------

@dataclass(frozen=True)
class Transfer:
    """One move: the source, the target, and how the target takes it.

    `as_file` (the image transfer): the dataset is one file put INTO the target folder under `as_file`,
    replacing only that file; otherwise the target folder is replaced by the dataset. `force` false: a target
    that exists is kept as it is (the DLS's `force`)."""

    source: Place
    target: Place
    force: bool = True
    as_file: str = ""


KINDS = ("ssh2ssh", "http2ssh", "ssh2http", "stagein", "stageout", "image_transfer")


def plan(kind: str, conf: Mapping[str, Any]) -> Transfer:
    """The transfer a DAG of this kind makes of its conf (stagein's `oid` resolved into `source` before)."""
    if not isinstance(conf, Mapping):
        raise TransferError(f"the run's conf must be a JSON object, not {type(conf).__name__}")
    force = flag(conf, "force", True)
    if kind == "ssh2ssh":
        target = ssh_target(conf)
        if not conf.get("source_host"):
            raise TransferError("conf source_host is missing (the host the source is on)")
        return Transfer(SshPlace(ssh_host(conf, "source_", target.host), source_path(conf)), target, force)
    if kind == "http2ssh":
        return Transfer(url_place(text(conf, "url"), "url"), ssh_target(conf), force)
    if kind == "ssh2http":
        url = conf.get("url") or conf.get("target")
        return Transfer(SshPlace(ssh_host(conf), source_path(conf)),
                        url_place(text({"url": url}, "url"), "url", str(conf.get("method") or "PUT")), force)
    if kind == "stagein":
        source = text(conf, "source")
        target = ssh_target(conf)
        if is_url(source):
            return Transfer(url_place(source, "source"), target, force)
        if conf.get("source_host"):
            return Transfer(SshPlace(ssh_host(conf, "source_", target.host), source_path(conf)), target, force)
        return Transfer(LocalPlace(source_path(conf)), target, force)
    if kind == "stageout":
        source = SshPlace(ssh_host(conf), source_path(conf))
        where = text(conf, "target")
        if is_url(where):
            return Transfer(source, url_place(where, "target", str(conf.get("method") or "PUT")), force)
        problem = target_problem(where)
        if problem:
            raise TransferError(f"target {where}: {problem}")
        if conf.get("target_host"):
            return Transfer(source, SshPlace(ssh_host(conf, "target_", source.host), normal_path(where)), force)
        return Transfer(source, LocalPlace(normal_path(where)), force)
    if kind == "image_transfer":
        image = text(conf, "image_id")
        if "/" in image or image in (".", "..") or "\n" in image:
            raise TransferError(f"conf image_id: {image!r} is not a file name")
        service = text(conf, "url")
        url = service if service.endswith("/") else service + "/"
        target = text(conf, "target")
        if target_problem(target):
            raise TransferError(f"target {target}: {target_problem(target)}")
        return Transfer(url_place(url + _url_segment(image), "url"),
                        SshPlace(ssh_host(conf), normal_path(target)), force, as_file=image)
    raise TransferError(f"unknown transfer kind {kind!r} (one of {', '.join(KINDS)})")


def _url_segment(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
