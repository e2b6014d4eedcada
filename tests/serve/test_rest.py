"""`orch serve`'s REST API on the embedded defaults (localhost, background jobs watched like batch jobs):
tokens, the exposed workflows with their inputs' schema, a scientist's own keys, executions that belong to
the one who started them (another user gets 404), logs as JSON and as server-sent events, results, cancel,
inputs refused as data, malformed bodies, the generated OpenAPI document."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.api import Orchestrator
from orchestrator.serve.app import create_app

JOBS = Path(__file__).resolve().parents[1] / "integration" / "data" / "jobs.yaml"
EXPOSED = "jobs@local@exec_job"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    home, out = root / "home", root / "out"
    out.mkdir()
    api = Orchestrator(home)
    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    api.expose("jobs", "exec_job", EXPOSED)
    tokens = {"admin": api.create_user("admin", admin=True), "alice": api.create_user("alice"),
              "bob": api.create_user("bob")}
    api.close()
    with TestClient(create_app(home, (root / "data",))) as client:
        yield client, tokens, out


def auth(tokens: dict, who: str) -> dict:
    return {"Authorization": f"Bearer {tokens[who]}"}


def wait_over(client, tokens, who: str, execution_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/executions/{execution_id}", headers=auth(tokens, who)).json()
        if body["status"] not in ("running", "queued"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"execution {execution_id} still running after {timeout}s")


def test_no_token_or_a_wrong_one_is_401(service):
    client, _, _ = service
    assert client.get("/api/v1/workflows").status_code == 401
    wrong = client.get("/api/v1/workflows", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


def test_the_exposed_workflow_is_listed_with_its_inputs_schema(service):
    client, tokens, _ = service
    listed = client.get("/api/v1/workflows", headers=auth(tokens, "alice"))
    assert listed.status_code == 200
    (workflow,) = listed.json()
    assert workflow["name"] == EXPOSED
    inputs = {i["name"]: i for i in workflow["inputs"]}
    assert inputs["message"]["required"] is True and inputs["message"]["type"] == "string"
    assert inputs["sleep_a"] == {**inputs["sleep_a"], "type": "integer", "required": False, "default": 1,
                                 "has_default": True}
    assert inputs["fail_b"]["default"] is False


def test_keys_are_their_owners_alone(service):
    client, tokens, _ = service
    created = client.post("/api/v1/ssh_keys", headers=auth(tokens, "alice"), json={"cluster_user": "alice"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["public_key"].startswith("ssh-ed25519 ") and "PRIVATE" not in created.text
    assert [k["id"] for k in client.get("/api/v1/ssh_keys", headers=auth(tokens, "alice")).json()] == [key["id"]]
    assert client.get("/api/v1/ssh_keys", headers=auth(tokens, "bob")).json() == []
    assert client.delete(f"/api/v1/ssh_keys/{key['id']}", headers=auth(tokens, "bob")).status_code == 404
    checked = client.post(f"/api/v1/ssh_keys/{key['id']}/verify", headers=auth(tokens, "alice"),
                          json={"workflow": EXPOSED})
    assert checked.status_code == 200 and checked.json()["ok"] is True  # the embedded site logs in to no host
    assert client.post(f"/api/v1/ssh_keys/{key['id']}/verify", headers=auth(tokens, "bob"),
                       json={"workflow": EXPOSED}).status_code == 404
    assert client.delete(f"/api/v1/ssh_keys/{key['id']}", headers=auth(tokens, "alice")).status_code == 204
    assert client.get("/api/v1/ssh_keys", headers=auth(tokens, "alice")).json() == []


def ended(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_scientists_execution_runs_gives_results_and_logs_and_is_theirs_alone(service):
    client, tokens, out = service
    executors = client.app.state.server.executors
    (warm,) = executors.ready_pids  # started with the service, before anyone asked for anything
    started = client.post("/api/v1/executions", headers=auth(tokens, "alice"),
                          json={"workflow": EXPOSED, "inputs": {"message": "from alice"}})
    assert started.status_code == 202, started.text
    execution_id = started.json()["id"]
    # bob cannot see it, nor its logs, nor cancel it: 404, as for an id that does not exist
    for method, path in (("get", ""), ("get", "/logs"), ("get", "/results"), ("delete", "")):
        response = getattr(client, method)(f"/api/v1/executions/{execution_id}{path}", headers=auth(tokens, "bob"))
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/api/v1/executions", headers=auth(tokens, "bob")).json() == []

    done = wait_over(client, tokens, "alice", execution_id)
    assert done["status"] == "done", done
    # the execution ran in the worker the pool had warmed, which ended with it; the next one waits
    assert ended(warm) and len(executors.ready_pids) == 1 and executors.ready_pids != [warm]
    assert done["steps"] and all(s["status"] == "done" for s in done["steps"] if s["operation"]), done["steps"]
    assert done["edges"]
    assert (out / "b").read_text() == "from alice\n"
    results = client.get(f"/api/v1/executions/{execution_id}/results", headers=auth(tokens, "alice")).json()
    assert results["outputs"]["b_file"] == str(out / "b")
    downloaded = client.get(f"/api/v1/executions/{execution_id}/results/b_file", headers=auth(tokens, "alice"))
    assert downloaded.status_code == 200 and downloaded.text == "from alice\n"

    logs = client.get(f"/api/v1/executions/{execution_id}/logs", headers=auth(tokens, "alice")).json()
    assert any(e["kind"] == "task" for e in logs) and logs[-1]["message"].endswith("done")
    later = client.get(f"/api/v1/executions/{execution_id}/logs", params={"after": logs[1]["id"]},
                       headers=auth(tokens, "alice")).json()
    assert later == logs[2:]
    streamed = client.get(f"/api/v1/executions/{execution_id}/logs",
                          headers={**auth(tokens, "alice"), "Accept": "text/event-stream"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    ids = [int(line[4:]) for line in streamed.text.splitlines() if line.startswith("id: ")]
    assert ids == [e["id"] for e in logs] and streamed.text.rstrip().endswith("event: end\ndata: {}")
    listed = client.get("/api/v1/executions", headers=auth(tokens, "alice"), params={"workflow": EXPOSED}).json()
    assert execution_id in [e["id"] for e in listed]


def test_a_running_execution_is_cancelled(service):
    client, tokens, _ = service
    started = client.post("/api/v1/executions", headers=auth(tokens, "alice"),
                          json={"workflow": EXPOSED, "inputs": {"message": "m", "sleep_a": 120}})
    assert started.status_code == 202, started.text
    execution_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # its job is submitted
        steps = client.get(f"/api/v1/executions/{execution_id}", headers=auth(tokens, "alice")).json()["steps"]
        if any(s["operation"] == "Runnable.submit" and s["status"] == "done" for s in steps):
            break
        time.sleep(0.3)
    cancelled = client.delete(f"/api/v1/executions/{execution_id}", headers=auth(tokens, "alice"))
    assert cancelled.status_code == 202, cancelled.text
    assert wait_over(client, tokens, "alice", execution_id)["status"] == "cancelled"


def test_executions_beyond_the_first_wait_their_turn_and_a_queued_one_is_cancelled_before_it_starts(service):
    client, tokens, out = service
    alice, bob = auth(tokens, "alice"), auth(tokens, "bob")

    def post(who: dict, message: str, **more) -> str:
        started = client.post("/api/v1/executions", headers=who,
                              json={"workflow": EXPOSED, "inputs": {"message": message, **more}})
        assert started.status_code == 202, started.text
        return started.json()["id"]

    first = post(alice, "first", sleep_a=3)
    second, third, fourth = post(bob, "second"), post(alice, "third"), post(alice, "fourth")
    for queued, who in ((second, bob), (third, alice), (fourth, alice)):
        body = client.get(f"/api/v1/executions/{queued}", headers=who).json()
        assert body["status"] == "queued" and not any(s["status"] != "pending" for s in body["steps"]), body
    assert client.get(f"/api/v1/executions/{second}", headers=alice).status_code == 404  # bob's alone
    # bad inputs are refused at once, not when their turn comes
    assert client.post("/api/v1/executions", headers=alice,
                       json={"workflow": EXPOSED, "inputs": {"message": "m", "sleep_a": "soon"}}).status_code == 422
    cancelled = client.delete(f"/api/v1/executions/{third}", headers=alice)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled", cancelled.text

    ran = [wait_over(client, tokens, who, e) for e, who in ((first, "alice"), (second, "bob"), (fourth, "alice"))]
    assert [r["status"] for r in ran] == ["done"] * 3, ran
    # one at a time, in the order they came: each starts after the one before has ended
    assert ran[0]["ended"] <= ran[1]["started"] and ran[1]["ended"] <= ran[2]["started"], ran
    assert (out / "b").read_text() == "fourth\n"
    never = client.get(f"/api/v1/executions/{third}", headers=alice).json()
    assert never["status"] == "cancelled" and all(s["status"] == "pending" for s in never["steps"]), never
    logs = [e["message"] for e in client.get(f"/api/v1/executions/{second}/logs", headers=bob).json()]
    assert logs[0].endswith("queued: the deployment is busy") and logs[-1].endswith("done"), logs


def test_a_queued_execution_whose_key_was_deleted_fails_with_the_reason_and_the_queue_goes_on(service):
    client, tokens, out = service
    alice = auth(tokens, "alice")
    key = client.post("/api/v1/ssh_keys", headers=alice).json()["id"]

    def post(message: str, **more) -> str:
        started = client.post("/api/v1/executions", headers=alice,
                              json={"workflow": EXPOSED, "inputs": {"message": message}, **more})
        assert started.status_code == 202, started.text
        return started.json()["id"]

    first = client.post("/api/v1/executions", headers=alice,
                        json={"workflow": EXPOSED, "inputs": {"message": "before", "sleep_a": 3}}).json()["id"]
    keyed, after = post("keyed", ssh_key=key), post("after")
    assert client.get(f"/api/v1/executions/{keyed}", headers=alice).json()["status"] == "queued"
    assert client.delete(f"/api/v1/ssh_keys/{key}", headers=alice).status_code == 204

    assert wait_over(client, tokens, "alice", first)["status"] == "done"
    refused = wait_over(client, tokens, "alice", keyed)
    assert refused["status"] == "failed" and key in refused["error"], refused
    assert wait_over(client, tokens, "alice", after)["status"] == "done"
    assert (out / "b").read_text() == "after\n"


def test_inputs_are_data_and_malformed_bodies_name_the_field(service):
    client, tokens, _ = service
    outside = client.post("/api/v1/executions", headers=auth(tokens, "alice"),
                          json={"workflow": EXPOSED, "inputs": {"message": "/etc/passwd"}})
    assert outside.status_code == 422 and "message" in outside.text and "data root" in outside.text
    unknown = client.post("/api/v1/executions", headers=auth(tokens, "alice"),
                          json={"workflow": EXPOSED, "inputs": {"message": "m"}, "shell": "rm -rf /"})
    assert unknown.status_code == 422 and "shell" in unknown.text
    missing = client.post("/api/v1/executions", headers=auth(tokens, "alice"), json={"inputs": {}})
    assert missing.status_code == 422 and "workflow" in missing.text
    no_such = client.post("/api/v1/executions", headers=auth(tokens, "alice"), json={"workflow": "nope"})
    assert no_such.status_code == 404
    required = client.post("/api/v1/executions", headers=auth(tokens, "alice"), json={"workflow": EXPOSED})
    assert required.status_code == 422 and "message" in required.text


def test_admins_alone_manage_users_and_the_openapi_document_is_generated(service):
    client, tokens, _ = service
    assert client.post("/api/v1/admin/users", headers=auth(tokens, "alice"), json={"name": "carol"}).status_code == 403
    made = client.post("/api/v1/admin/users", headers=auth(tokens, "admin"), json={"name": "carol"})
    assert made.status_code == 201 and made.json()["token"]
    carol = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/workflows", headers=carol).status_code == 200
    document = client.get("/openapi.json").json()
    assert {"/api/v1/workflows", "/api/v1/ssh_keys", "/api/v1/executions",
            "/api/v1/executions/{execution_id}/logs"} <= set(document["paths"])
