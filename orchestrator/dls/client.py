"""A small REST client for Airflow: trigger a DAG run, read its state, its failure and its result, cancel it.

It speaks Airflow 3 (/api/v2, a bearer token from POST /auth/token, `logical_date` required in a trigger) and
Airflow 2 (/api/v1, basic auth), chosen from what the server answers. Standard library only: the mover
playbooks run it with orch's core install (`python -m orchestrator.dls.client ...`, JSON on stdout). The
service's password comes from service.json or the environment, never from a command line.
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

V2, V1 = "v2", "v1"
_HEALTH = {V2: "/api/v2/monitor/health", V1: "/api/v1/health"}
# conf keys whose values are never shown, should a caller ever put one there (orch's confs hold no secrets)
_SECRET_KEY = re.compile(r"pass|secret|token|private|credential|key$", re.IGNORECASE)
_ERROR_LIMIT = 2000


class AirflowError(Exception):
    """Airflow answered with an error, or not at all; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Service:
    """How to reach an Airflow: its URL, a user, and the API version when already known."""

    url: str
    username: str
    password: str = field(repr=False)
    api: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> Service:
        try:
            data = json.loads(Path(path).read_text())
            return cls(str(data["url"]).rstrip("/"), str(data["username"]), str(data["password"]),
                       data.get("api") if data.get("api") in (V1, V2) else None)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AirflowError(f"{path}: not a readable service file with url, username and password "
                               f"({exc.__class__.__name__}); is the local Airflow up (orch dls up)?") from None

    @classmethod
    def from_env(cls, url: str, environ: Mapping[str, str]) -> Service:
        missing = [name for name in ("ORCH_DLS_USERNAME", "ORCH_DLS_PASSWORD") if not environ.get(name)]
        if missing:
            raise AirflowError(f"--url needs {' and '.join(missing)} in the environment")
        return cls(url.rstrip("/"), environ["ORCH_DLS_USERNAME"], environ["ORCH_DLS_PASSWORD"])


@dataclass(frozen=True)
class Failure:
    task_id: str | None
    error: str


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


class Client:
    """One Airflow; the bearer token (Airflow 3) is cached here and renewed when the server refuses it."""

    def __init__(self, service: Service, timeout: float = 30.0):
        self.service = service
        self.timeout = timeout
        self._api = service.api
        self._token: str | None = None

    # -- transport ---------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None,
              raw: bool = False) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.service.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                status, text = reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read()
        except (OSError, ValueError) as exc:
            raise AirflowError(f"cannot reach Airflow at {self.service.url}: {exc}") from None
        if raw:
            return status, text.decode(errors="replace")
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode(errors="replace")

    @property
    def api(self) -> str:
        """v2 or v1, from what the server answers (asked once)."""
        if self._api is None:
            for version in (V2, V1):
                status, _ = self._send("GET", _HEALTH[version])
                if status == 200:
                    self._api = version
                    break
            else:
                raise AirflowError(f"no Airflow REST API at {self.service.url} (neither /api/v2 nor /api/v1)")
        return self._api

    def _auth(self, renew: bool = False) -> dict[str, str]:
        if self.api == V1:
            pair = f"{self.service.username}:{self.service.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self._token is None or renew:
            status, answer = self._send("POST", "/auth/token",
                                        {"username": self.service.username, "password": self.service.password})
            if status not in (200, 201) or not isinstance(answer, dict) or "access_token" not in answer:
                raise AirflowError(f"Airflow at {self.service.url} refused user {self.service.username!r} "
                                   f"(HTTP {status})", status)
            self._token = answer["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def call(self, method: str, route: str, body: Any = None, ok: Sequence[int] = (200,), raw: bool = False,
             headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """`route` below /api/vN; an AirflowError unless the status is in ok."""
        path = f"/api/{self.api}{route}"
        status, answer = self._send(method, path, body, {**(headers or {}), **self._auth()}, raw)
        # an expired token, or one of a server restarted with a new secret (Airflow 3 answers 403 to a token it
        # cannot verify): a new token, once
        if status in (401, 403) and self.api == V2:
            status, answer = self._send(method, path, body, {**(headers or {}), **self._auth(renew=True)}, raw)
        if status not in ok:
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            raise AirflowError(f"{method} {path}: HTTP {status}: {str(detail)[:300]}", status)
        return status, answer

    # -- DAG runs ----------------------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict | None:
        status, answer = self.call("GET", f"/dags/{_quote(dag_id)}", ok=(200, 404))
        return answer if status == 200 else None

    def _run_route(self, dag_id: str, run_id: str) -> str:
        return f"/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"

    def trigger(self, dag_id: str, run_id: str, conf: Mapping[str, Any]) -> dict:
        """Start a run with our own id; a second trigger of the same id returns the existing run (a mover that
        restarted triggers again safely)."""
        now = datetime.now(UTC).isoformat()
        body = {"dag_run_id": run_id, "conf": dict(conf),
                ("logical_date" if self.api == V2 else "execution_date"): now}
        status, answer = self.call("POST", f"/dags/{_quote(dag_id)}/dagRuns", body, ok=(200, 409))
        return answer if status == 200 else self.run(dag_id, run_id)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", self._run_route(dag_id, run_id))[1]

    def state(self, dag_id: str, run_id: str) -> str:
        return str(self.run(dag_id, run_id)["state"])

    def cancel(self, dag_id: str, run_id: str) -> dict:
        """Mark the run failed: Airflow stops its running tasks."""
        return self.call("PATCH", self._run_route(dag_id, run_id), {"state": "failed"})[1]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        answer = self.call("GET", self._run_route(dag_id, run_id) + "/taskInstances")[1]
        return list(answer.get("task_instances", [])) if isinstance(answer, dict) else []

    def failure(self, dag_id: str, run_id: str) -> Failure | None:
        """The failed task and the error lines of its log (its exception), secrets of the conf masked."""
        failed = [t for t in self.task_instances(dag_id, run_id) if t.get("state") == "failed"]
        if not failed:
            return None
        task = min(failed, key=lambda t: str(t.get("end_date") or ""))  # the first to fail caused the rest
        task_id, attempt = str(task["task_id"]), max(int(task.get("try_number") or 1), 1)
        route = f"{self._run_route(dag_id, run_id)}/taskInstances/{_quote(task_id)}/logs/{attempt}?full_content=true"
        if self.api == V2:
            answer = self.call("GET", route)[1]
            lines = error_lines_v2(answer.get("content", []) if isinstance(answer, dict) else [])
        else:
            lines = error_lines_text(self.call("GET", route, raw=True, headers={"Accept": "text/plain"})[1])
        conf = self.run(dag_id, run_id).get("conf") or {}
        error = mask(f"task {task_id} failed: " + ("\n".join(lines) or "no error in its log"), conf)
        return Failure(task_id, error[-_ERROR_LIMIT:])

    def result(self, dag_id: str, run_id: str) -> Any:
        """The return value (XCom) of the run's last task to finish, or None."""
        done = [t for t in self.task_instances(dag_id, run_id) if t.get("state") == "success"]
        if not done:
            return None
        last = max(done, key=lambda t: str(t.get("end_date") or ""))
        route = (f"{self._run_route(dag_id, run_id)}/taskInstances/{_quote(str(last['task_id']))}"
                 "/xcomEntries/return_value")
        status, answer = self.call("GET", route, ok=(200, 404))
        return _xcom_value(answer.get("value")) if status == 200 and isinstance(answer, dict) else None

    def report(self, dag_id: str, run_id: str) -> dict:
        """{"state", "error", "result"}: what the mover reads."""
        state = self.state(dag_id, run_id)
        error = result = None
        if state == "failed":
            failure = self.failure(dag_id, run_id)
            error = failure.error if failure else "the DAG run was marked failed"
        elif state == "success":
            result = self.result(dag_id, run_id)
        return {"state": state, "error": error, "result": result}


def _xcom_value(value: Any) -> Any:
    """Airflow 2 returns an XCom as its Python text (a dict's repr); Airflow 3 as the JSON value itself."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def error_lines_v2(content: list) -> list[str]:
    """From Airflow 3's structured log: each error's exception (type and message), else the error event
    itself ("Task failed with exception" says nothing its exception does not)."""
    lines: list[str] = []
    for entry in content:
        if not isinstance(entry, dict) or str(entry.get("level", "")).lower() not in ("error", "critical"):
            continue
        details = [d for d in entry.get("error_detail") or [] if isinstance(d, dict)]
        found = [f"{d.get('exc_type', 'Error')}: {d.get('exc_value', '')}".rstrip(": ") for d in details]
        found = found or [str(entry.get("event", "")).strip()]
        lines += [line for line in found if line and line not in lines]
    return lines


_QUALIFIED = re.compile(r"^(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*): ")


def error_lines_text(text: str) -> list[str]:
    """From a text log (Airflow 2): each traceback's closing exception line (its class without the module,
    which Airflow 2 names after a hash of the DAG file), else the ERROR lines."""
    exceptions: list[str] = []
    errors: list[str] = []
    in_traceback = False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            exceptions.append(_QUALIFIED.sub(r"\1: ", line.strip()))
            in_traceback = False
        elif " ERROR - " in line:
            errors.append(line.split(" ERROR - ", 1)[1].strip())
    found = exceptions or errors
    return [line for index, line in enumerate(found) if line not in found[:index]]


def mask(text: str, conf: Mapping[str, Any]) -> str:
    for key, value in conf.items():
        if _SECRET_KEY.search(str(key)) and isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


# -- the command line the mover playbooks call ------------------------------------------------------------------

def _service(args: argparse.Namespace, environ: Mapping[str, str]) -> Service:
    if args.url:
        return Service.from_env(args.url, environ)
    home = Path(environ.get("ORCH_HOME") or Path.home() / ".local" / "share" / "orch")
    return Service.from_file(Path(args.service) if args.service else home / "dls" / "service.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.dls.client",
                                     description="Trigger, watch and cancel Airflow DAG runs (JSON on stdout).")
    parser.add_argument("--service", help="service file [default: $ORCH_HOME/dls/service.json]")
    parser.add_argument("--url", help="Airflow's URL instead (user and password from ORCH_DLS_USERNAME and "
                                      "ORCH_DLS_PASSWORD)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in ("trigger", "state", "cancel"):
        sub = verbs.add_parser(verb)
        sub.add_argument("--dag", required=True)
        sub.add_argument("--run-id", required=True)
        if verb == "trigger":
            sub.add_argument("--conf-file", help="a JSON object: the run's conf [default: {}]")
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        client = Client(_service(args, env))
        if args.verb == "trigger":
            conf = json.loads(Path(args.conf_file).read_text()) if args.conf_file else {}
            if not isinstance(conf, dict):
                raise AirflowError(f"{args.conf_file}: the conf must be a JSON object")
            run = client.trigger(args.dag, args.run_id, conf)
            out = {"dag_run_id": run.get("dag_run_id", args.run_id), "state": run.get("state")}
        elif args.verb == "state":
            out = client.report(args.dag, args.run_id)
        else:
            out = {"dag_run_id": args.run_id, "state": client.cancel(args.dag, args.run_id).get("state")}
    except (AirflowError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
