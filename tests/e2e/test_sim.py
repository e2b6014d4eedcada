"""End-to-end tests of the simulated HPC site (orchestrator.sim)."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import stat
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import sim
from orchestrator.sim.cli import sim as sim_cli
from orchestrator.sim.subnet import choose_subnet, preferred_subnet
from orchestrator.sim.testing import SimSite, bring_up, leftovers, traces_of, unavailable_reason

HOSTS = ("login", "data", "builder")


def _http_get(url: str) -> bytes:
    # Only ever the site's own data host address (see site.yaml's data_url).
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _process(pid: int) -> str:
    """What /proc says of pid (command and state), for a failure message."""
    try:
        return " ".join(Path(f"/proc/{pid}/stat").read_text().split()[1:3])
    except OSError:
        return "gone by now"


@pytest.mark.e2e
def test_site_file_has_the_topology_inputs(sim_site: SimSite) -> None:
    assert sim_site["site_name"] == sim_site.name
    assert sim_site["scheduler"] == "slurm"
    # orch logs in as an unprivileged cluster user, as on a real cluster.
    assert sim_site["ssh_user"] == "hpcuser" and sim_site["ssh_port"] == 22
    assert sim_site["work_dir"] == "/scratch" and sim_site["image_dir"] == "/scratch/images"
    assert sim_site["data_dir"] == "/data" and sim_site["build_dir"] == "/opt/images"
    assert sim_site["data_url"] == f"http://{sim_site['data_host']}:8080"
    assert sim_site["python_interpreter"] == "/usr/bin/python3"
    key = Path(sim_site["ssh_key_file"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    known = Path(sim_site["known_hosts_file"]).read_text().splitlines()
    addresses = {sim_site[f"{h}_host"] for h in HOSTS}
    assert {line.split()[0] for line in known} == addresses and len(known) == 3


@pytest.mark.e2e
@pytest.mark.parametrize("host", HOSTS)
def test_ssh_with_site_key_reaches_each_host(sim_site: SimSite, host: str) -> None:
    # With only what site.yaml gives (no ssh_config): key, exact known_hosts, address.
    done = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", sim_site["ssh_key_file"], "-o", "IdentitiesOnly=yes",
         "-o", f"UserKnownHostsFile={sim_site['known_hosts_file']}", "-o", "StrictHostKeyChecking=yes",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
         "-p", str(sim_site["ssh_port"]), f"{sim_site['ssh_user']}@{sim_site[f'{host}_host']}",
         "hostname"],
        capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{sim_site.name}-{host}"
    assert sim_site.ssh(host, "hostname -s").stdout.strip() == f"{sim_site.name}-{host}"


@pytest.mark.e2e
@pytest.mark.parametrize("host", HOSTS)
def test_the_cluster_user_is_the_same_unprivileged_account_on_every_host(sim_site: SimSite, host: str) -> None:
    user = sim_site["ssh_user"]
    shown = sim_site.ssh(host, "id -u; id -g; id -un; echo $HOME; "
                               "stat -c '%U:%G %a' ~ ~/.ssh ~/.ssh/authorized_keys")
    assert shown.returncode == 0, shown.stderr
    uid, gid, name, home, *modes = shown.stdout.splitlines()
    assert (uid, gid, name, home) == ("3213", "3213", user, f"/home/{user}")
    assert modes == [f"{user}:{user} 700", f"{user}:{user} 700", f"{user}:{user} 600"]
    # The site key is in the normal place, the one `orch credentials create` names.
    key = Path(f"{sim_site['ssh_key_file']}.pub").read_text().split()[:2]
    assert sim_site.ssh(host, "cat ~/.ssh/authorized_keys").stdout.split()[:2] == key
    # The account lives in the host's own files only: the machine's /etc has no such user.
    assert not any(line.startswith(f"{user}:") for line in Path("/etc/passwd").read_text().splitlines())
    assert sim_site.ssh(host, "cat /etc/shadow").returncode != 0  # an unprivileged user


@pytest.mark.e2e
@pytest.mark.parametrize("host, area", [("login", "work_dir"), ("login", "image_dir"), ("login", "data_dir"),
                                        ("data", "data_dir"), ("builder", "build_dir")])
def test_the_site_folders_belong_to_the_cluster_user(sim_site: SimSite, host: str, area: str) -> None:
    folder = sim_site[area]
    assert sim_site.ssh(host, f"stat -c '%U:%G' {folder}").stdout.strip() == f"{sim_site['ssh_user']}:" \
        f"{sim_site['ssh_user']}"
    probe = f"{folder}/probe-{uuid.uuid4().hex}"
    made = sim_site.ssh(host, f"mkdir {probe} && touch {probe}/f && stat -c %U {probe}/f && rm -r {probe}")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == sim_site["ssh_user"]


@pytest.mark.e2e
def test_root_may_log_in_for_the_harness_only(sim_site: SimSite) -> None:
    assert sim_site.ssh("login", "id -u", user="root").stdout.strip() == "0"
    assert sim_site.ssh("login", "id -u").stdout.strip() == "3213"  # what the site file gives orch


@pytest.mark.e2e
def test_files_written_on_a_host_stay_on_it(sim_site: SimSite) -> None:
    # As root, to write where the cluster user may not (a folder of the machine's /).
    probe = f"/opt/orch-sim-probe-{uuid.uuid4().hex}"
    assert sim_site.ssh("login", f"echo here > {probe} && cat {probe}", user="root").stdout.strip() == "here"
    assert sim_site.ssh("data", f"test ! -e {probe}").returncode == 0
    assert sim_site.ssh("builder", f"test ! -e {probe}").returncode == 0
    assert not Path(probe).exists()
    # The host's /root is its own, not the machine's (no pyenv .bashrc from there).
    listed = sim_site.ssh("login", "ls -A /root", user="root")
    assert listed.returncode == 0, listed.stderr
    assert ".bashrc" not in listed.stdout.split()


@pytest.mark.e2e
@pytest.mark.parametrize("host", HOSTS)
def test_hosts_reach_only_the_site_network(sim_site: SimSite, host: str) -> None:
    # Read the routing tables only; no packet is sent anywhere.
    subnet = ipaddress.ip_network(f"{sim_site['login_host']}/24", strict=False)
    routes = json.loads(sim_site.ssh(host, "ip -j -4 route show table main").stdout)
    assert routes, "the host has no route at all"
    for route in routes:
        assert route["dst"] != "default", route
        assert ipaddress.ip_network(route["dst"], strict=False).subnet_of(subnet), route
    assert sim_site.ssh(host, "ip -6 route show default").stdout.strip() == ""
    assert sim_site.ssh(host, "cat /etc/resolv.conf | grep -c nameserver").stdout.strip() == "0"


@pytest.mark.e2e
def test_data_host_serves_data_over_http(sim_site: SimSite) -> None:
    name = f"probe-{uuid.uuid4().hex}.txt"
    assert sim_site.ssh("data", f"echo dataset > {sim_site['data_dir']}/{name}").returncode == 0
    assert _http_get(f"{sim_site['data_url']}/{name}") == b"dataset\n"


@pytest.mark.e2e
def test_slurm_job_runs_to_completion_as_the_cluster_user(sim_site: SimSite) -> None:
    user = sim_site["ssh_user"]
    submit = sim_site.ssh(
        "login", f"cd {sim_site['work_dir']} && sbatch --parsable --wrap 'hostname; id -u; id -un; sleep 1'")
    assert submit.returncode == 0, submit.stderr
    job = submit.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        shown = sim_site.ssh("login", f"scontrol show job {job}").stdout
        state = next((w.split("=", 1)[1] for w in shown.split() if w.startswith("JobState=")), "")
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"):
            break
        time.sleep(0.3)
    assert state == "COMPLETED"
    assert f"UserId={user}(3213)" in shown
    # squeue keeps a finished job for MinJobAge; -t all lists it with its owner.
    assert sim_site.ssh("login", f"squeue -h -t all -j {job} -o %u").stdout.strip() == user
    out_file = f"{sim_site['work_dir']}/slurm-{job}.out"
    output = sim_site.ssh("login", f"cat {out_file}").stdout
    # The job's processes had the user's uid, not root's, and so has the file they wrote.
    assert output.split() == [f"{sim_site.name}-login", "3213", user]
    assert sim_site.ssh("login", f"stat -c %U:%G {out_file}").stdout.strip() == f"{user}:{user}"
    assert f"JobId={job} " in sim_site.ssh("login", "cat /var/log/slurm/jobcomp.log").stdout


@pytest.mark.e2e
def test_up_twice_is_idempotent(sim_site: SimSite) -> None:
    before = sim.status(sim_site.name, sim_site.directory)
    site_file = Path(sim_site.directory, "site.yaml").read_text()
    sim.up(sim_site.name, HOSTS, sim_site.directory)
    after = sim.status(sim_site.name, sim_site.directory)
    assert after["up"] and after["hosts"] == before["hosts"]  # same PIDs: nothing restarted
    assert Path(sim_site.directory, "site.yaml").read_text() == site_file


@pytest.mark.e2e
def test_crashed_host_is_restarted_by_up(sim_site: SimSite) -> None:
    pid = sim.host_pid(sim_site.name, "data", sim_site.directory)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # A bounded wait: the kernel takes a killed PID 1's host down with it.
    deadline = time.monotonic() + 30
    while (left := sim.host_pid(sim_site.name, "data", sim_site.directory)) is not None:
        if time.monotonic() > deadline:
            pytest.fail(f"the data host's PID 1 ({left}, {_process(left)}) was still there 30 s after SIGKILL")
        time.sleep(0.05)
    assert not sim.status(sim_site.name, sim_site.directory)["hosts"]["data"]["alive"]
    sim.up(sim_site.name, HOSTS, sim_site.directory)
    info = sim.status(sim_site.name, sim_site.directory)
    assert info["up"] and info["hosts"]["data"]["pid"] not in (None, pid)
    assert sim_site.ssh("data", "hostname").stdout.strip() == f"{sim_site.name}-data"
    assert _http_get(f"{sim_site['data_url']}/").startswith(b"<!DOCTYPE")
    assert sim.host_exec(sim_site.name, "data", ["cat", "/etc/hostname"],
                         sim_site.directory).stdout.strip() == f"{sim_site.name}-data"


@pytest.mark.e2e
def test_second_site_runs_side_by_side_and_down_leaves_nothing(
    sim_site: SimSite, tmp_path: Path
) -> None:
    two = bring_up("orchtwo", tmp_path / "orchtwo", ("login",))
    try:
        assert two["login_host"] != sim_site["login_host"]
        net_one = ipaddress.ip_network(f"{sim_site['login_host']}/24", strict=False)
        net_two = ipaddress.ip_network(f"{two['login_host']}/24", strict=False)
        assert not net_one.overlaps(net_two)
        assert "data_host" not in two.values and "builder_host" not in two.values
        assert two.ssh("login", "hostname").stdout.strip() == "orchtwo-login"
        assert sim_site.ssh("login", "hostname").stdout.strip() == f"{sim_site.name}-login"
        assert two.ssh("login", "sinfo -h -o %T").stdout.strip() == "idle"
        traces = traces_of(two)
        assert traces.pids
    finally:
        sim.down("orchtwo", tmp_path / "orchtwo")
    assert leftovers(traces) == []
    sim.down("orchtwo", tmp_path / "orchtwo")  # idempotent
    assert sim.status("orchtwo", tmp_path / "orchtwo")["up"] is False
    assert sim.status(sim_site.name, sim_site.directory)["up"]


@pytest.mark.e2e
def test_site_whose_subnet_is_taken_gets_another(
    sim_site: SimSite, tmp_path: Path
) -> None:
    taken = ipaddress.ip_network(f"{sim_site['login_host']}/24", strict=False)
    name = next(f"orchclash{i}" for i in range(100_000) if preferred_subnet(f"orchclash{i}") == taken)
    clash = bring_up(name, tmp_path / name, ("login",))
    try:
        assert ipaddress.ip_address(clash["login_host"]) not in taken
        assert clash.ssh("login", "hostname").stdout.strip() == f"{name}-login"
    finally:
        sim.down(name, tmp_path / name)


def test_subnet_choice_is_stable_and_avoids_networks_in_use() -> None:
    preferred = preferred_subnet("orchsim")
    assert preferred == preferred_subnet("orchsim")
    assert choose_subnet("orchsim", None, []) == preferred
    other = choose_subnet("orchsim", None, [preferred])
    assert other != preferred and not other.overlaps(preferred)
    assert choose_subnet("orchsim", other, [preferred]) == other  # the recorded one is kept


def test_non_root_and_missing_tools_are_reported() -> None:
    problems = sim.check_prerequisites(euid=1000)
    assert any("root" in p and "uid 1000" in p for p in problems)
    problems = sim.check_prerequisites(euid=0, which=lambda tool: None if tool == "sshd" else "/bin/true")
    assert problems == ["missing tools: sshd (package openssh-server)"]
    with pytest.raises(sim.SimError, match="root"):
        sim.require_prerequisites(euid=1000)


def test_cli_reports_errors_without_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(sim_cli, ["up", "--name", "orchnone", "--dir", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "root is needed" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.e2e
def test_cli_status_and_default_directory_from_context(sim_site: SimSite, tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(sim_cli, ["status", "--name", sim_site.name, "--dir", str(sim_site.directory),
                                    "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["up"] is True
    # The root CLI passes {"home": Path}; a site never brought up there is just "not up".
    shown = runner.invoke(sim_cli, ["status", "--name", "orchnowhere"], obj={"home": tmp_path})
    assert shown.exit_code == 0, shown.output
    assert f"dir {tmp_path / 'sim' / 'orchnowhere'}" in shown.stdout


def test_unavailable_reason_follows_the_prerequisites() -> None:
    assert (unavailable_reason() is None) == (sim.check_prerequisites() == [])


def test_down_and_status_need_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(sim.SimError, match="root is needed"):
        sim.down("orchnone", tmp_path)
    with pytest.raises(sim.SimError, match="root is needed"):
        sim.status("orchnone", tmp_path)
