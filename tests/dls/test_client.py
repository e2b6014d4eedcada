"""The Airflow REST client (issue 17) against a real local Airflow, for each REST version: orch_check runs to
success with its return value, a failing run shows its exception's message, a cancelled run is failed and its
task process stops, the command line the movers call answers JSON, and the service's password appears in no
log and on no command line."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator.dls import client as dls_client

# -- without Airflow --------------------------------------------------------------------------------------------


def test_text_log_errors_are_the_error_lines_and_the_exception():
    log = "\n".join([
        "[2026-01-01T00:00:00.000+0000] {taskinstance.py:441} INFO - starting",
        "[2026-01-01T00:00:01.000+0000] {taskinstance.py:3311} ERROR - Task failed with exception",
        "Traceback (most recent call last):",
        '  File "/x/orch_check.py", line 34, in check',
        "    raise CheckFailed(str(conf['fail']))",
        "unusual_prefix_80543f_orch_check.CheckFailed: no such file /data/in",
        "[2026-01-01T00:00:01.100+0000] {taskinstance.py:1225} INFO - Marking task as FAILED.",
        "[2026-01-01T00:00:01.200+0000] {standard_task_runner.py:124} ERROR - Failed to execute job 7",
        "Traceback (most recent call last):",
        "unusual_prefix_80543f_orch_check.CheckFailed: no such file /data/in"])
    assert dls_client.error_lines_text(log) == ["CheckFailed: no such file /data/in"]
    assert dls_client.error_lines_text("[x] {a.py:1} ERROR - Task received SIGTERM") == ["Task received SIGTERM"]


def test_structured_log_errors_are_the_exceptions():
    content = [{"event": "starting", "level": "info"},
               {"event": "Task failed with exception", "level": "error",
                "error_detail": [{"exc_type": "CheckFailed", "exc_value": "no such file /data/in"}]},
               {"event": "Task killed!", "level": "error"}]
    assert dls_client.error_lines_v2(content) == ["CheckFailed: no such file /data/in", "Task killed!"]


def test_secret_looking_conf_values_are_masked():
    conf = {"api_token": "s3cr3t-value", "target": "/data/out", "key": "abcd1234"}
    text = "failed with s3cr3t-value at /data/out using abcd1234"
    assert dls_client.mask(text, conf) == "failed with *** at /data/out using ***"


def test_airflow2_xcom_text_is_read_back_as_its_value():
    assert dls_client._xcom_value("{'files': 3, 'checksum': 'ab'}") == {"files": 3, "checksum": "ab"}
    assert dls_client._xcom_value({"slept": 0}) == {"slept": 0}


def test_the_command_line_needs_a_service():
    env = {"ORCH_HOME": "/nonexistent/orch"}
    assert dls_client.main(["state", "--dag", "d", "--run-id", "r"], env) == 1
    assert dls_client.main(["--url", "http://127.0.0.1:9", "state", "--dag", "d", "--run-id", "r"], env) == 1


# -- against Airflow -------------------------------------------------------------------------------------------

_runs = itertools.count()


def _run_id(name: str) -> str:
    return f"orch_test_{name}_{next(_runs)}_{uuid.uuid4().hex[:8]}"


def _settled(client: dls_client.Client, run_id: str) -> str | None:
    state = client.state("orch_check", run_id)
    return state if state in ("success", "failed") else None


def test_a_run_succeeds_with_its_return_value(any_airflow):
    client = any_airflow.client()
    run_id = _run_id("ok")
    run = client.trigger("orch_check", run_id, {"sleep": 0})
    assert run["dag_run_id"] == run_id and run["state"] in ("queued", "running")
    assert any_airflow.wait_for(lambda: _settled(client, run_id)) == "success"
    assert client.report("orch_check", run_id) == {"state": "success", "error": None, "result": {"slept": 0}}
    # a second trigger of the same id (a mover that restarted) finds the run, starts no other
    again = client.trigger("orch_check", run_id, {"sleep": 0})
    assert again["dag_run_id"] == run_id and again["state"] == "success"


def test_a_failing_run_shows_the_exception_message(any_airflow):
    client = any_airflow.client()
    run_id = _run_id("fail")
    client.trigger("orch_check", run_id, {"fail": "no such file /data/in/sample.txt"})
    assert any_airflow.wait_for(lambda: _settled(client, run_id)) == "failed"
    report = client.report("orch_check", run_id)
    assert report["state"] == "failed" and report["result"] is None
    assert "no such file /data/in/sample.txt" in report["error"]
    assert "CheckFailed" in report["error"] and "task check failed" in report["error"]
    failure = client.failure("orch_check", run_id)
    assert failure is not None and failure.task_id == "check"


def _task_process(client: dls_client.Client, run_id: str) -> int | None:
    tasks = client.task_instances("orch_check", run_id)
    return tasks[0].get("pid") if tasks and tasks[0].get("state") == "running" else None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_cancel_fails_the_run_and_stops_its_task(any_airflow):
    client = any_airflow.client()
    run_id = _run_id("cancel")
    client.trigger("orch_check", run_id, {"sleep": 600})
    pid = any_airflow.wait_for(lambda: _task_process(client, run_id))
    assert _alive(pid)
    assert client.cancel("orch_check", run_id)["state"] == "failed"
    assert client.state("orch_check", run_id) == "failed"
    any_airflow.wait_for(lambda: not _alive(pid), timeout=90)
    assert client.task_instances("orch_check", run_id)[0]["state"] != "running"


def test_an_expired_token_is_renewed(any_airflow):
    client = any_airflow.client()
    client.dag("orch_check")
    client._token = "not-a-token"  # what a restarted server (new secret) makes of the cached one
    assert client.dag("orch_check")["dag_id"] == "orch_check"


def test_a_wrong_password_is_refused(any_airflow):
    service = dls_client.Service(any_airflow.url, "orch", "not-the-password", any_airflow.service.api)
    with pytest.raises(dls_client.AirflowError) as refused:
        dls_client.Client(service).dag("orch_check")
    assert refused.value.status in (401, 403)
    assert "not-the-password" not in str(refused.value)


def _client_cli(airflow, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run([sys.executable, "-m", "orchestrator.dls.client", *args], capture_output=True,
                          text=True, env=env or airflow.env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_movers_command_line(any_airflow, tmp_path: Path):
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"sleep": 0}))
    run_id = _run_id("cli")
    # the service from $ORCH_HOME/dls/service.json
    assert _client_cli(any_airflow, "trigger", "--dag", "orch_check", "--run-id", run_id,
                       "--conf-file", str(conf))["dag_run_id"] == run_id

    def settled():
        report = _client_cli(any_airflow, "state", "--dag", "orch_check", "--run-id", run_id)
        return report if report["state"] in ("success", "failed") else None

    assert any_airflow.wait_for(settled) == {"state": "success", "error": None, "result": {"slept": 0}}
    # the service from --url and the environment (no service file)
    env = {key: value for key, value in any_airflow.env.items() if key != "ORCH_HOME"}
    env.update(ORCH_HOME=str(tmp_path), ORCH_DLS_USERNAME="orch", ORCH_DLS_PASSWORD=any_airflow.service.password)
    sleeper = _run_id("cli_cancel")
    conf.write_text(json.dumps({"sleep": 600}))
    _client_cli(any_airflow, "--url", any_airflow.url, "trigger", "--dag", "orch_check", "--run-id", sleeper,
                "--conf-file", str(conf), env=env)
    assert _client_cli(any_airflow, "--url", any_airflow.url, "cancel", "--dag", "orch_check", "--run-id",
                       sleeper, env=env)["state"] == "failed"
    assert _client_cli(any_airflow, "--url", any_airflow.url, "state", "--dag", "orch_check", "--run-id",
                       sleeper, env=env)["state"] == "failed"


def test_the_password_is_in_no_log_and_on_no_command_line(any_airflow):
    # after the runs above: their task logs, the processes' own logs and Airflow's setup output
    password = any_airflow.service.password
    logs = [path for path in any_airflow.layout.logs.rglob("*") if path.is_file()]
    assert any(path.name == "scheduler.log" for path in logs) and len(logs) > 4
    assert [path for path in logs if password in path.read_text(errors="replace")] == []
    seen = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if password.encode() in (entry / "cmdline").read_bytes():
                    seen.append(entry.name)
            except OSError:
                continue
    assert seen == [], f"the password is on the command line of {seen}"
    assert os.environ.get("ORCH_DLS_PASSWORD") != password
