"""`orch dls up|status|down` (issue 17): a real local Airflow from the checkout's venv, reached on loopback only,
`up` a second time changing nothing, a stale record cleaned up, `down` never signalling a process it did not
start. The session fixture (conftest.py) asserts that `down` leaves none of the recorded processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.dls import local

# -- without Airflow: the configuration and the records ----------------------------------------------------------

AIRFLOW3 = local.Airflow(Path("/venv/bin/airflow"), 3)
AIRFLOW2 = local.Airflow(Path("/venv/bin/airflow"), 2)


@pytest.mark.parametrize("airflow", [AIRFLOW3, AIRFLOW2], ids=["airflow3", "airflow2"])
def test_environment_binds_loopback_and_passes_on_only_what_it_should(airflow: local.Airflow, tmp_path: Path):
    environ = {"PATH": "/usr/bin", "HOME": "/root", "VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_TOKEN": "t0k3n",
               "ORCH_MASTER_SECRET": "not-for-airflow", "VIRTUAL_ENV": "/work/main/.venv", "PYTHONPATH": "/x"}
    layout = local.Layout.of(tmp_path)
    env = local.airflow_env(airflow, layout, 18123, tmp_path, environ)
    assert env["ORCH_HOME"] == str(tmp_path)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "dls")
    assert env["VAULT_ADDR"] == "http://127.0.0.1:8200" and env["VAULT_TOKEN"] == "t0k3n"
    for name in ("ORCH_MASTER_SECRET", "VIRTUAL_ENV", "PYTHONPATH"):
        assert name not in env
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(local.dags_folder())
    assert (local.dags_folder() / "orch_check.py").is_file()
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{layout.database}"
    hosts = {key: value for key, value in env.items() if key.endswith(("__HOST", "_SERVER_HOST"))}
    assert hosts and set(hosts.values()) == {"127.0.0.1"}, hosts
    commands = local.commands(airflow, 18123)
    assert "--skip-serve-logs" in commands["scheduler"]
    server = commands["api-server" if airflow.major >= 3 else "webserver"]
    assert "127.0.0.1" in server and "18123" in server


def test_no_vault_variables_unless_orch_has_them(tmp_path: Path):
    env = local.airflow_env(AIRFLOW3, local.Layout.of(tmp_path), 8081, tmp_path, {"PATH": "/usr/bin"})
    assert not [key for key in env if "VAULT" in key]


def test_each_start_gets_its_own_secrets(tmp_path: Path):
    first, second = (local.airflow_env(AIRFLOW3, local.Layout.of(tmp_path), 8081, tmp_path, {}) for _ in range(2))
    assert first["AIRFLOW__API_AUTH__JWT_SECRET"] != second["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert len(first["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64


def test_no_airflow_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(local, "_checkout_airflow", lambda: tmp_path / "nothing" / "airflow")
    monkeypatch.setattr(local.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(local.DlsError, match=r"pip install -e '\.\[dls\]'"):
        local.find_airflow(None, {"PATH": str(tmp_path)})
    with pytest.raises(local.DlsError, match="ORCH_AIRFLOW names"):
        local.find_airflow(None, {"ORCH_AIRFLOW": str(tmp_path / "missing")})


def test_a_stale_record_is_cleaned_up_and_a_reused_pid_never_signalled(tmp_path: Path):
    layout = local.Layout.of(tmp_path)
    layout.home.mkdir(parents=True)
    me = local.start_time(os.getpid())
    assert me is not None
    # our own PID with another start time: what a PID reused after Airflow exited looks like
    layout.pids_file.write_text(json.dumps({"major": 3, "port": 1, "processes": [
        {"name": "scheduler", "pid": os.getpid(), "start_time": me + 1},
        {"name": "api-server", "pid": 2**22 + 7, "start_time": 1}]}))
    state = local.status(tmp_path)
    assert not state.up and [alive for _, alive in state.processes] == [False, False]
    assert local.down(tmp_path) == []
    assert not layout.pids_file.exists()  # we are still here: nothing was signalled


# -- a real Airflow -------------------------------------------------------------------------------------------------

def test_up_is_healthy(any_airflow):
    service = json.loads(any_airflow.layout.service_file.read_text())
    assert service["url"] == any_airflow.url and service["url"].startswith("http://127.0.0.1:")
    assert service["username"] == "orch" and len(service["password"]) >= 16
    assert service["api"] == ("v2" if any_airflow.flavour == "airflow3" else "v1")
    path = "/api/v2/monitor/health" if service["api"] == "v2" else "/api/v1/health"
    assert local.is_healthy(local.health(any_airflow.url, path))
    for private in (any_airflow.layout.service_file, any_airflow.layout.pids_file):
        assert private.stat().st_mode & 0o777 == 0o600
    # Airflow 2 refuses a standalone DAG processor on SQLite: its scheduler parses the DAGs
    assert [p.name for p in any_airflow.processes] == (["api-server", "scheduler", "dag-processor"]
                                                       if service["api"] == "v2" else ["webserver", "scheduler"])
    assert all(local.is_running(p) for p in any_airflow.processes)


def _listening(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket the processes hold, from /proc/net/tcp and tcp6."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd) if fd.is_symlink() else ""
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                # the kernel prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((socket.inet_ntop(family, raw), int(port, 16)))
    return found


def test_every_process_listens_on_loopback_only(any_airflow):
    sockets = _listening(any_airflow.session_pids())
    port = int(any_airflow.url.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in sockets, sockets
    assert all(address in ("127.0.0.1", "::1") for address, _ in sockets), sockets


def test_up_again_changes_nothing(any_airflow):
    before = any_airflow.pids()
    done = any_airflow.orch("dls", "up", "--port", "1")  # the port does not matter: nothing is started
    assert done.returncode == 0, done.stderr
    assert f"already up at {any_airflow.url}" in done.stdout
    assert any_airflow.pids() == before


def test_status_shows_url_processes_and_health(any_airflow):
    done = any_airflow.orch("dls", "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"up    {any_airflow.url}"
    for process in any_airflow.processes:
        assert any(line.split()[:4] == [process.name, "pid", str(process.pid), "running"] for line in lines), lines
    assert "scheduler healthy" in done.stdout and "metadatabase healthy" in done.stdout


def test_status_when_down(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "dls", "status"], capture_output=True,
                          text=True, env={**os.environ, "ORCH_HOME": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.strip() == "down"


def test_up_that_times_out_shows_the_logs_and_stops_what_it_started(tmp_path: Path, monkeypatch):
    program = Path(__file__).resolve().parents[2] / ".venv-dls" / "bin" / "airflow"
    if not program.is_file():
        pytest.skip(f"{program} missing: python3 -m venv .venv-dls && .venv-dls/bin/pip install -e '.[dls]'")
    started: list[local.Process] = []
    spawn = local._spawn
    monkeypatch.setattr(local, "_spawn", lambda *args: started.append(spawn(*args)) or started[-1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(local.DlsError) as failed:
        local.up(tmp_path, port, str(program), environ={**os.environ, "ORCH_HOME": str(tmp_path)}, timeout=0.1)
    message = str(failed.value)
    assert "did not come up in 0 s" in message and "stopped what was started" in message
    assert "scheduler:\n" in message and "api-server:\n" in message  # each process's log tail
    assert [p.name for p in started] == ["api-server", "scheduler", "dag-processor"]
    assert not [pid for p in started for pid in local.session_members(p)]
    assert not local.Layout.of(tmp_path).pids_file.exists()
    assert not local.status(tmp_path).up
