"""The simulated HPC site: `up`, `status`, `down` and a back door into hosts.

This is the driver; each step lives in its own module (layout, subnet, net, seed,
roles, host, sshclient, sitefile). Nothing is kept in memory between calls: the
site's directory (state.json, hosts/<host>/init.pid) and the kernel are the truth.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from orchestrator.sim import host as hosts_mod
from orchestrator.sim import keys, net, roles, seed, sitefile, sshclient
from orchestrator.sim.errors import SimError
from orchestrator.sim.layout import (
    HostLayout,
    SiteLayout,
    SitePaths,
    allocate_indices,
    bridge_name,
    host_layout,
    site_layout,
    validate_names,
)
from orchestrator.sim.locks import SUBNET_LOCK, locked
from orchestrator.sim.paths import site_directory
from orchestrator.sim.prereq import require_prerequisites, require_root
from orchestrator.sim.state import SiteState, load_state, save_state, write_atomic
from orchestrator.sim.subnet import choose_subnet, networks_in_use, preferred_subnet

DEFAULT_NAME = "orchsim"
DEFAULT_HOSTS: tuple[str, ...] = ("login", "data", "builder")
Progress = Callable[[str], None]


def _silent(_message: str) -> None:
    pass


def up(
    name: str = DEFAULT_NAME,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    directory: Path | str | None = None,
    *,
    progress: Progress | None = None,
) -> Path:
    """Bring the site up (idempotent) and return the path of its site.yaml.

    Hosts that run are kept; missing or crashed ones are (re)started; hosts of an
    earlier `up` that are no longer listed are removed.
    """
    say = progress or _silent
    started = time.monotonic()
    host_names = validate_names(name, hosts)
    require_prerequisites(slurm=True)
    paths = SitePaths(site_directory(name, directory))
    paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with locked(paths.lock_file):
        previous = load_state(paths.state_file)
        if previous is not None and previous.name != name:
            raise SimError(f"{paths.directory} holds site {previous.name!r}, not {name!r}")
        keys.ensure_client_key(paths, name)
        keys.ensure_munge_key(paths)
        site = _network(name, host_names, paths, previous, say)
        save_state(paths.state_file, SiteState(name, site.subnet,
                                               tuple((h.name, h.index) for h in site.hosts)))
        if previous is not None:
            _remove(paths, [host_layout(name, previous.subnet, h, i)
                            for h, i in previous.indices if h not in host_names])
        try:
            booted = _boot_missing(site, paths, say)
            _refresh_hosts_files(site, paths, skip={h.name for h in booted})
            for h in site.hosts:
                say(f"services on {h.hostname}")
                roles.start_services(h, _executor(_running_pid(h, paths)))
            _write_client_files(site, paths)
            sshclient.check_logins(site, paths)
        except SimError as exc:
            raise SimError(f"{exc}\n(site {name} may be half up; `down` removes what there is)") from exc
    say(f"site {name} up in {time.monotonic() - started:.1f} s: {paths.site_file}")
    return paths.site_file


def _network(name: str, host_names: tuple[str, ...], paths: SitePaths,
             previous: SiteState | None, say: Progress) -> SiteLayout:
    """The site's layout, with its bridge up on its subnet."""
    indices = allocate_indices(host_names, previous.index_map() if previous else {})
    bridge = bridge_name(name)
    # Machine-wide lock: two sites coming up at once must not both take a free /24.
    with locked(SUBNET_LOCK):
        current = net.bridge_address(bridge)
        if previous is not None and current is not None and current.network == previous.subnet:
            return site_layout(name, previous.subnet, indices)
        if previous is not None:
            # No bridge (or a wrong one): any host still running is cut off; start over.
            _remove(paths, [host_layout(name, previous.subnet, h, i) for h, i in previous.indices])
        net.delete_link(bridge)
        subnet = choose_subnet(name, previous.subnet if previous else None,
                               networks_in_use(ignore_device=bridge))
        site = site_layout(name, subnet, indices)
        say(f"bridge {site.bridge} {site.gateway}")
        net.create_bridge(site)
        return site


def _boot_missing(site: SiteLayout, paths: SitePaths, say: Progress) -> list[HostLayout]:
    todo = [h for h in site.hosts if not hosts_mod.healthy(site, h, paths.host_dir(h.name))]
    client_pub = keys.public_key(paths.client_key)
    for h in todo:
        hostdir = paths.host_dir(h.name)
        sshclient.close_master(paths, h.name)
        hosts_mod.stop(h, hostdir)  # whatever an earlier life left
        hostdir.mkdir(mode=0o700, parents=True)
        host_key = keys.ensure_host_key(paths, site.name, h.name)
        entries = seed.base_entries(site, h, host_key, client_pub) + roles.role_entries(site, h, paths)
        seed.write_seed(hostdir / "seed", entries)
        say(f"boot {h.hostname} {h.address}")
        hosts_mod.boot(site, h, hostdir)
    hosts_mod.wait_booted([(h, paths.host_dir(h.name)) for h in todo])
    return todo


def _executor(pid: int) -> roles.HostExec:
    def run_in_host(argv: Sequence[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return hosts_mod.exec_in(pid, argv, input=stdin)

    return run_in_host


def _running_pid(h: HostLayout, paths: SitePaths) -> int:
    pid = hosts_mod.init_pid(h, paths.host_dir(h.name))
    if pid is None:
        raise SimError(f"host {h.hostname} is not running")
    return pid


def _refresh_hosts_files(site: SiteLayout, paths: SitePaths, skip: set[str]) -> None:
    # Kept hosts learn about added or removed ones; written through /proc/PID/root,
    # which is the host's own root filesystem seen from the machine.
    text = seed.hosts_file(site)
    for h in site.hosts:
        if h.name in skip:
            continue
        target = Path(f"/proc/{_running_pid(h, paths)}/root/etc/hosts")
        if target.read_text() != text:
            target.write_text(text)


def _write_client_files(site: SiteLayout, paths: SitePaths) -> None:
    host_keys = {h.name: keys.public_key(paths.host_key(h.name)) for h in site.hosts}
    write_atomic(paths.known_hosts, sshclient.render_known_hosts(site, host_keys))
    write_atomic(paths.ssh_config, sshclient.render_ssh_config(site, paths))
    sitefile.write_site_file(site, paths)


def _remove(paths: SitePaths, layouts: Iterable[HostLayout]) -> None:
    for h in layouts:
        sshclient.close_master(paths, h.name)
        hosts_mod.stop(h, paths.host_dir(h.name))


def status(name: str = DEFAULT_NAME, directory: Path | str | None = None) -> dict[str, Any]:
    """What runs of the site: per host address, PID, alive, sshd answering; Slurm's state."""
    require_root()
    paths = SitePaths(site_directory(name, directory))
    result: dict[str, Any] = {"name": name, "directory": str(paths.directory), "up": False,
                              "subnet": None, "site_file": None, "hosts": {}, "slurm": None}
    previous = load_state(paths.state_file)
    if previous is None:
        return result
    site = site_layout(name, previous.subnet, previous.index_map())
    result["subnet"] = str(site.subnet)
    bridge_ok = net.bridge_address(site.bridge) is not None
    all_ok = bridge_ok
    for h in site.hosts:
        pid = hosts_mod.init_pid(h, paths.host_dir(h.name))
        alive = bridge_ok and hosts_mod.healthy(site, h, paths.host_dir(h.name))
        sshd = alive and hosts_mod.sshd_answers(str(h.address))
        all_ok = all_ok and alive and sshd
        result["hosts"][h.name] = {"hostname": h.hostname, "address": str(h.address),
                                   "netns": h.netns, "pid": pid, "alive": alive, "sshd": sshd}
        if h.name == "login":
            result["slurm"] = {"host": h.name, "state": _slurm_state(pid) if alive else "down"}
    result["up"] = all_ok and paths.site_file.exists()
    result["site_file"] = str(paths.site_file) if paths.site_file.exists() else None
    return result


def _slurm_state(pid: int | None) -> str:
    if pid is None:
        return "down"
    done = hosts_mod.exec_in(pid, ["sinfo", "-h", "-o", "%T"], timeout=15)
    state = done.stdout.strip() if done.returncode == 0 else ""
    return state or "down"


def down(name: str = DEFAULT_NAME, directory: Path | str | None = None, *,
         progress: Progress | None = None) -> None:
    """Stop every host of the site and remove its netns, links and runtime files (idempotent).

    Kept for the next `up`: state.json (subnet, host indices) and keys/.
    """
    say = progress or _silent
    require_root()
    paths = SitePaths(site_directory(name, directory))
    exists = paths.directory.is_dir()
    with locked(paths.lock_file) if exists else nullcontext():
        sshclient.close_masters(paths.directory)  # before their hosts vanish
        previous = _load_state_lenient(paths)
        subnet = previous.subnet if previous else preferred_subnet(name)
        indices = previous.index_map() if previous else {}
        for h in sorted(_known_hosts(name, paths, indices)):
            layout = host_layout(name, subnet, h, indices.get(h, 0))
            say(f"stop {layout.hostname}")
            hosts_mod.stop(layout, paths.host_dir(h))
        net.delete_link(bridge_name(name))
        for f in (paths.site_file, paths.ssh_config, paths.known_hosts):
            f.unlink(missing_ok=True)
        for d in (paths.hosts_dir, paths.control_dir):
            shutil.rmtree(d, ignore_errors=True)
    say(f"site {name} down")


def _load_state_lenient(paths: SitePaths) -> SiteState | None:
    try:
        return load_state(paths.state_file)
    except SimError:
        return None  # a damaged state file must not keep `down` from cleaning up


def _known_hosts(name: str, paths: SitePaths, indices: dict[str, int]) -> set[str]:
    """Hosts of the site by any trace: state, host dirs, or a netns '<site>-<host>'."""
    found = set(indices)
    if paths.hosts_dir.is_dir():
        found |= {d.name for d in paths.hosts_dir.iterdir() if d.is_dir()}
    pattern = re.compile(rf"^{re.escape(name)}-([a-z][a-z0-9]*)$")
    found |= {m.group(1) for ns in net.netns_names() if (m := pattern.match(ns))}
    return found


def host_pid(name: str, host: str, directory: Path | str | None = None) -> int | None:
    """The machine PID of the host's PID 1 (its sshd), or None when it is not running."""
    paths = SitePaths(site_directory(name, directory))
    previous = load_state(paths.state_file)
    if previous is None or host not in previous.index_map():
        return None
    layout = host_layout(name, previous.subnet, host, previous.index_map()[host])
    return hosts_mod.init_pid(layout, paths.host_dir(host))


def host_exec(name: str, host: str, argv: Sequence[str], directory: Path | str | None = None,
              *, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run argv as root inside a host without SSH (nsenter); output captured as text."""
    pid = host_pid(name, host, directory)
    if pid is None:
        raise SimError(f"host {host!r} of site {name!r} is not running")
    return hosts_mod.exec_in(pid, argv, input=input, timeout=timeout)
