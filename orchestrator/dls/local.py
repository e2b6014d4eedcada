"""A local Airflow for tests and first tries: `orch dls up|status|down`.

Airflow runs from its own virtual environment (the `dls` extra; its pins clash with orch's) and is configured
only through AIRFLOW__SECTION__KEY variables, so nothing here depends on an airflow.cfg. Its home is
$ORCH_HOME/dls: the SQLite database, the logs, service.json (how to reach it, 0600) and pids.json (the
processes `down` may stop, with their start times so a reused PID is never signalled). Every process binds
loopback only. Nothing is ever installed here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.dls import client as dls_client

DEFAULT_PORT = 8081
USERNAME = "orch"
PARALLELISM = 2
PARSE_EVERY = 10   # seconds between two parses of a DAG file
# the environment orch passes on: ORCH_HOME (the DAGs read orch's credential store through it) and Vault's
# address and token when orch has them; nothing else of orch's environment (its venv, its secrets) leaks in
_PASSED_ON = ("VAULT_ADDR", "VAULT_TOKEN", "ORCH_VAULT_ADDR", "ORCH_VAULT_TOKEN", "ORCH_VAULT_TOKEN_FILE",
              "ORCH_VAULT_MOUNT", "ORCH_VAULT_PREFIX", "ORCH_VAULT_CACERT")
_BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR")
_INSTALL_HINT = ("install it in a virtual environment of its own, from orch's checkout: "
                 "python3 -m venv .venv-dls && .venv-dls/bin/pip install -e '.[dls]' "
                 "(or name an airflow program with --airflow or ORCH_AIRFLOW)")


class DlsError(Exception):
    """A local Airflow that cannot be found, started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class Layout:
    """The files of a local Airflow under $ORCH_HOME/dls."""

    home: Path

    @classmethod
    def of(cls, orch_home: Path) -> Layout:
        return cls(Path(orch_home) / "dls")

    @property
    def service_file(self) -> Path:
        return self.home / "service.json"

    @property
    def pids_file(self) -> Path:
        return self.home / "pids.json"

    @property
    def passwords_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def database(self) -> Path:
        return self.home / "airflow.db"

    def log_of(self, name: str) -> Path:
        return self.logs / f"{name}.log"


@dataclass(frozen=True)
class Airflow:
    """An airflow program and the major version of the Airflow it runs."""

    program: Path
    major: int

    @property
    def api(self) -> str:
        return "v2" if self.major >= 3 else "v1"

    @property
    def health_path(self) -> str:
        return "/api/v2/monitor/health" if self.major >= 3 else "/api/v1/health"


@dataclass(frozen=True)
class Process:
    """A process `up` started: `down` signals its process group only while its start time still matches."""

    name: str
    pid: int
    start_time: int


# -- finding Airflow ---------------------------------------------------------------------------------------------

def dags_folder() -> Path:
    return Path(__file__).resolve().parent / "dags"


def _checkout_airflow() -> Path | None:
    """.venv-dls/bin/airflow of the checkout orch runs from (a checkout has its pyproject.toml)."""
    root = Path(__file__).resolve().parents[2]
    return root / ".venv-dls" / "bin" / "airflow" if (root / "pyproject.toml").is_file() else None


def airflow_candidates(option: str | None, environ: Mapping[str, str], executable: str) -> list[tuple[str, Path]]:
    """Where to look for airflow, in order, each with where it came from (pure but for the checkout's path)."""
    found: list[tuple[str, Path]] = []
    if option:
        return [("--airflow", Path(option))]
    if environ.get("ORCH_AIRFLOW"):
        return [("ORCH_AIRFLOW", Path(environ["ORCH_AIRFLOW"]))]
    found.append(("beside orch's Python", Path(executable).parent / "airflow"))
    checkout = _checkout_airflow()
    if checkout is not None:
        found.append(("the checkout's .venv-dls", checkout))
    on_path = shutil.which("airflow", path=environ.get("PATH"))
    if on_path:
        found.append(("PATH", Path(on_path)))
    return found


def find_airflow(option: str | None = None, environ: Mapping[str, str] | None = None) -> Airflow:
    """The first airflow program that exists, with its version; a DlsError saying how to install one if none."""
    env = os.environ if environ is None else environ
    candidates = airflow_candidates(option, env, sys.executable)
    for origin, program in candidates:
        if program.is_file() and os.access(program, os.X_OK):
            program = program.expanduser().absolute()  # the processes run in Airflow's home
            return Airflow(program, _major_version(program))
        if origin in ("--airflow", "ORCH_AIRFLOW"):
            raise DlsError(f"{origin} names {program}, which is not an executable airflow program")
    raise DlsError(f"no Airflow found ({', '.join(o for o, _ in candidates)}): {_INSTALL_HINT}")


def _major_version(program: Path) -> int:
    # the venv's python answers from package metadata in a tenth of the time `airflow version` takes
    python = program.parent / "python"
    argv = ([str(python), "-c", "import importlib.metadata as m; print(m.version('apache-airflow'))"]
            if python.is_file() else [str(program), "version"])
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_base_env(os.environ))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DlsError(f"cannot run {program}: {exc}") from exc
    text = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    try:
        return int(text[0].split(".")[0])
    except (IndexError, ValueError):
        raise DlsError(f"{program} does not say its version ({done.stderr.strip()[-300:]}): {_INSTALL_HINT}") from None


# -- the configuration: pure ------------------------------------------------------------------------------------

def _base_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {key: environ[key] for key in _BASE_ENV if key in environ}


def airflow_env(airflow: Airflow, layout: Layout, port: int, orch_home: Path, environ: Mapping[str, str],
                secret: Callable[[], str] = lambda: secrets.token_urlsafe(64)) -> dict[str, str]:
    """The whole environment of the Airflow processes: every setting as AIRFLOW__SECTION__KEY."""
    env = _base_env(environ)
    env.update({key: environ[key] for key in _PASSED_ON if environ.get(key)})
    # Airflow runs its own command again for each task (`airflow tasks run`): its venv first on PATH
    env["PATH"] = os.pathsep.join(filter(None, [str(airflow.program.parent), environ.get("PATH")]))
    env.update({
        "ORCH_HOME": str(orch_home),
        "AIRFLOW_HOME": str(layout.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{layout.database}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(layout.logs),
        "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
        # health servers are off by default; should one be turned on, it stays on loopback
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    })
    # a periodic transfer's spec (orchestrator/dls/dags/_periodic.py) becomes a DAG at the next parse of that
    # file: every 10 s rather than Airflow's 30, so a deploy does not wait long for it
    parse_every = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL" if airflow.major >= 3
                   else "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": str(PARSE_EVERY)}
    env.update(parse_every)
    if airflow.major >= 3:
        env.update({
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secret(),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret(),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.passwords_file),
        })
    else:
        env.update({
            # Airflow 2 refuses the LocalExecutor on SQLite
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
            "AIRFLOW__WEBSERVER__WORKERS": "1",
            "AIRFLOW__WEBSERVER__SECRET_KEY": secret(),
            "AIRFLOW__WEBSERVER__BASE_URL": f"http://127.0.0.1:{port}",
            # basic auth for orch's client; the session backend for the web UI
            "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
        })
    return env


def commands(airflow: Airflow, port: int) -> dict[str, list[str]]:
    """The long-running processes, by name: API server, scheduler, DAG processor (Airflow 2 refuses a
    standalone DAG processor on SQLite: its scheduler parses the DAGs itself)."""
    program = str(airflow.program)
    server = (["api-server", "--host", "127.0.0.1", "--port", str(port)] if airflow.major >= 3
              else ["webserver", "--hostname", "127.0.0.1", "--port", str(port)])
    processes = {
        server[0]: [program, *server],
        # the scheduler's log server would otherwise bind every interface
        "scheduler": [program, "scheduler", "--skip-serve-logs"],
    }
    if airflow.major >= 3:
        processes["dag-processor"] = [program, "dag-processor"]
    return processes


# -- processes ---------------------------------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def is_running(process: Process) -> bool:
    return start_time(process.pid) == process.start_time


def session_members(process: Process) -> list[int]:
    """Every live process of the session the recorded process leads, itself included while it runs. The
    session id stays reserved while any member lives, so members found by it are ours even after the
    leader exited (Airflow's task runners have process groups of their own, but stay in the session)."""
    leader_running = is_running(process)
    if not leader_running and start_time(process.pid) is not None:
        return []  # the PID was reused by an unrelated process: not ours
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[3]) == process.pid:
                members.append(int(entry.name))
    return members


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _spawn(name: str, argv: list[str], env: dict[str, str], layout: Layout) -> Process:
    with open(layout.log_of(name), "ab") as log:
        child = subprocess.Popen(argv, env=env, cwd=layout.home, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    started = start_time(child.pid)
    # Popen's object is dropped on purpose: the process outlives this command; `down` reaps nothing
    return Process(name, child.pid, started if started is not None else -1)


def _run_once(argv: list[str], env: dict[str, str], layout: Layout, what: str, timeout: float = 300,
              stdin: str | None = None) -> None:
    """A short Airflow command (db migrate, users create), its output appended to logs/setup.log."""
    with open(layout.log_of("setup"), "ab") as log:
        try:
            done = subprocess.run(argv, env=env, cwd=layout.home, input=stdin.encode() if stdin else None,
                                  stdin=None if stdin else subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DlsError(f"{what} took over {timeout:.0f} s:\n{_tail(layout.log_of('setup'))}") from None
    if done.returncode != 0:
        raise DlsError(f"{what} failed (exit {done.returncode}):\n{_tail(layout.log_of('setup'))}")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"  ({path}: no log)"
    return "\n".join(f"  {line}" for line in text)


# -- the records -------------------------------------------------------------------------------------------------

def _write_private(path: Path, data: object) -> None:
    """JSON, 0600 from its creation (never readable by others, even for an instant), replaced atomically."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    partial.replace(path)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded(layout: Layout) -> tuple[dict, list[Process]]:
    """pids.json's fields and its processes ({} and [] without one)."""
    data = _read_json(layout.pids_file) or {}
    processes = [Process(str(p["name"]), int(p["pid"]), int(p["start_time"]))
                 for p in data.get("processes", []) if isinstance(p, dict)]
    return data, processes


def _record(layout: Layout, airflow: Airflow, port: int, processes: list[Process]) -> None:
    _write_private(layout.pids_file, {
        "airflow": str(airflow.program), "major": airflow.major, "port": port,
        "processes": [{"name": p.name, "pid": p.pid, "start_time": p.start_time} for p in processes]})


def _password(layout: Layout) -> str:
    """The `orch` user's password: kept across restarts (callers keep working), made once."""
    known = _read_json(layout.service_file) or {}
    password = known.get("password")
    return password if isinstance(password, str) and len(password) >= 16 else secrets.token_urlsafe(24)


# -- up, status, down --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Status:
    up: bool
    url: str | None
    processes: tuple[tuple[Process, bool], ...]   # each recorded process and whether it still runs
    health: dict | None                           # Airflow's health answer, None when it does not answer


def health(url: str, path: str, timeout: float = 3) -> dict | None:
    try:
        with urllib.request.urlopen(url + path, timeout=timeout) as reply:
            data = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_healthy(answer: dict | None) -> bool:
    """The database, the scheduler and the DAG processor say healthy (the triggerer is not run)."""
    if not answer:
        return False
    # Airflow 2 reports the DAG processor only once it runs standalone, as it does here
    processor = (answer.get("dag_processor") or {}).get("status")
    wanted = ["metadatabase", "scheduler"] + (["dag_processor"] if processor is not None else [])
    return all((answer.get(part) or {}).get("status") == "healthy" for part in wanted)


def status(orch_home: Path) -> Status:
    layout = Layout.of(orch_home)
    data, processes = recorded(layout)
    service = _read_json(layout.service_file) or {}
    running = tuple((p, is_running(p)) for p in processes)
    up = bool(running) and all(alive for _, alive in running)
    url = service.get("url") if up else None
    path = Airflow(Path(), int(data.get("major", 3))).health_path
    return Status(up, url, running, health(url, path) if url else None)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def up(orch_home: Path, port: int = DEFAULT_PORT, airflow_option: str | None = None,
       environ: Mapping[str, str] | None = None, timeout: float = 180,
       progress: Callable[[str], None] = lambda _: None) -> tuple[Status, bool]:
    """Start the local Airflow unless it runs; (its status, whether this call started it)."""
    env_in = os.environ if environ is None else environ
    orch_home = Path(orch_home).expanduser().absolute()  # the processes run elsewhere and keep it
    layout = Layout.of(orch_home)
    current = status(orch_home)
    if current.up:
        return current, False
    if current.processes:  # a stale or partial record: cleaned up before starting afresh
        some = any(alive for _, alive in current.processes)
        progress("some recorded processes are gone: stopping the others" if some else "removing a stale pids.json")
        down(orch_home)
    airflow = find_airflow(airflow_option, env_in)
    if not _port_free(port):
        raise DlsError(f"port {port} on 127.0.0.1 is in use: choose another with --port")
    layout.home.mkdir(parents=True, exist_ok=True)
    layout.home.chmod(0o700)  # Airflow makes its task logs world-readable: the folder keeps them ours
    layout.logs.mkdir(exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    password = _password(layout)
    if airflow.major >= 3:
        # written before Airflow starts, so its auth manager finds the user and never prints a password
        _write_private(layout.passwords_file, {USERNAME: password})
    _write_private(layout.service_file, {"url": url, "api": airflow.api, "username": USERNAME,
                                         "password": password})
    env = airflow_env(airflow, layout, port, orch_home, env_in)
    progress(f"migrating the database ({layout.database})")
    _run_once([str(airflow.program), "db", "migrate"], env, layout, "airflow db migrate")
    if airflow.major < 3:
        _set_user_v1(airflow, env, layout, password)
    started: list[Process] = []
    for name, argv in commands(airflow, port).items():
        started.append(_spawn(name, argv, env, layout))
        _record(layout, airflow, port, started)  # recorded at once: `down` can stop a half-started service
    progress(f"started {', '.join(f'{p.name} ({p.pid})' for p in started)}; waiting for {url}")
    try:
        _wait_ready(airflow, layout, url, started, password, timeout)
    except BaseException:  # an interrupted `up` too: nothing half-started is left running
        down(orch_home)
        raise
    return status(orch_home), True


def _wait_ready(airflow: Airflow, layout: Layout, url: str, started: list[Process], password: str,
                timeout: float) -> None:
    """Healthy, and orch's check DAG parsed (so a trigger right after `up` finds it)."""
    deadline = time.monotonic() + timeout
    api = dls_client.Client(dls_client.Service(url, USERNAME, password, airflow.api))
    healthy = False
    while time.monotonic() < deadline:
        dead = [p for p in started if not is_running(p)]
        if dead:
            raise DlsError(f"{dead[0].name} exited while starting:\n{_tail(layout.log_of(dead[0].name))}")
        healthy = healthy or is_healthy(health(url, airflow.health_path))
        if healthy and _has_dag(api, "orch_check"):
            return
        time.sleep(0.5)
    what = "orch's DAGs were not loaded" if healthy else f"{url}{airflow.health_path} did not say healthy"
    tails = "\n".join(f"{p.name}:\n{_tail(layout.log_of(p.name), 12)}" for p in started)
    raise DlsError(f"Airflow did not come up in {timeout:.0f} s ({what}); stopped what was started:\n{tails}")


def _has_dag(api: dls_client.Client, dag_id: str) -> bool:
    try:
        return api.dag(dag_id) is not None
    except dls_client.AirflowError:
        return False


# Airflow 2 keeps its users in its database (FAB): `airflow users create` would take the password on its command
# line or prompt on the terminal, so the venv's Python sets it from stdin through the same application builder
_SET_USER_V1 = """
import sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
name, password = sys.argv[1], sys.stdin.readline().rstrip("\\n")
with get_application_builder() as builder:
    user = builder.sm.find_user(username=name)
    if user is None:
        if not builder.sm.add_user(name, name, "dls", name + "@localhost", builder.sm.find_role("Admin"), password):
            raise SystemExit("cannot create user " + name)
    elif not builder.sm.reset_password(user.id, password):
        raise SystemExit("cannot set the password of " + name)
"""


def _set_user_v1(airflow: Airflow, env: dict[str, str], layout: Layout, password: str) -> None:
    python = airflow.program.parent / "python"
    if not python.is_file():
        raise DlsError(f"no python beside {airflow.program}: Airflow 2 needs it to set user {USERNAME}")
    _run_once([str(python), "-c", _SET_USER_V1, USERNAME], env, layout, f"setting Airflow 2 user {USERNAME}",
              stdin=password + "\n")


def down(orch_home: Path, timeout: float = 30) -> list[Process]:
    """Stop exactly the recorded processes and their sessions; the ones that were running."""
    layout = Layout.of(orch_home)
    _, processes = recorded(layout)
    members = {p: session_members(p) for p in processes}
    stopped = [p for p, pids in members.items() if pids]
    # the leaders first: a scheduler told to stop ends its executor's workers itself
    for process in stopped:
        # an exited leader's session left behind (a crashed scheduler's task runner) is told to stop directly
        _signal([process.pid] if is_running(process) else members[process], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(session_members(p) for p in stopped):
        time.sleep(0.2)
    for process in stopped:
        _signal(session_members(process), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(session_members(p) for p in stopped):
        time.sleep(0.1)
    left = [pid for p in stopped for pid in session_members(p)]
    if left:
        raise DlsError(f"processes {left} did not stop; pids.json kept")
    layout.pids_file.unlink(missing_ok=True)
    return stopped
