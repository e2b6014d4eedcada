"""GET /api/v1/registry: the registries, their workflows and versions, for admins alone (401 without a
token, 403 for a scientist); in the generated OpenAPI document."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orchestrator.api import Orchestrator
from orchestrator.serve.app import create_app

DATA = Path(__file__).resolve().parents[1] / "integration" / "data" / "registry"


@pytest.fixture
def service(tmp_path):
    home, registry = tmp_path / "home", tmp_path / "workflows"
    shutil.copytree(DATA, registry)
    (registry / "greet" / "site.yaml").write_text(f"out_dir: {tmp_path / 'out'}\n")
    with Orchestrator(home) as api:
        api.add_registry(str(registry), "lab")
        tokens = {"admin": api.create_user("admin", admin=True), "alice": api.create_user("alice")}
    with TestClient(create_app(home, resume=False)) as client:
        yield client, tokens, registry


def auth(tokens: dict, who: str) -> dict:
    return {"Authorization": f"Bearer {tokens[who]}"}


def test_admins_alone_list_the_registry(service):
    client, tokens, registry = service
    assert client.get("/api/v1/registry").status_code == 401
    forbidden = client.get("/api/v1/registry", headers=auth(tokens, "alice"))
    assert forbidden.status_code == 403 and str(registry) not in forbidden.text

    listed = client.get("/api/v1/registry", headers=auth(tokens, "admin"))
    assert listed.status_code == 200, listed.text
    assert listed.json() == [{
        "name": "lab", "source": str(registry.resolve()), "kind": "folder", "problem": None,
        "workflows": [{"name": "greet", "description": "Greets (the registry test's workflow)",
                       "topology": "topology.yaml", "site": "site.yaml", "problem": None,
                       "versions": [{"revision": "working tree", "committed": None, "subject": ""}]}]}]


def test_a_registry_that_can_no_longer_be_read_is_listed_with_why(service):
    client, tokens, registry = service
    shutil.rmtree(registry)
    (entry,) = client.get("/api/v1/registry", headers=auth(tokens, "admin")).json()
    assert entry["name"] == "lab" and entry["workflows"] == [] and "is gone" in entry["problem"]


def test_the_route_is_in_the_openapi_document(service):
    client, _, _ = service
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/registry"]["get"]
    assert operation["tags"] == ["admin"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].endswith(
        "/RegistryOut")


def wait_for(client, tokens, name: str, execution_id: str, timeout: float = 300) -> dict:
    """The deployment once its execution `execution_id` has ended (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = client.get(f"/api/v1/admin/deployments/{name}", headers=auth(tokens, "admin")).json()
        execution = shown.get("execution") or {}
        if execution.get("id") == execution_id and execution.get("status") not in ("running", None):
            return shown
        time.sleep(0.2)
    pytest.fail(f"deployment {name}: execution {execution_id} did not end within {timeout} s")


def test_an_admin_deploys_a_registry_workflow_and_undeploys_it(service, tmp_path):
    client, tokens, _ = service
    (tmp_path / "out").mkdir()  # the workflow writes into it
    body = {"name": "hello", "workflow": "lab/greet"}
    assert client.post("/api/v1/admin/deployments", json=body).status_code == 401
    assert client.post("/api/v1/admin/deployments", json=body, headers=auth(tokens, "alice")).status_code == 403
    started = client.post("/api/v1/admin/deployments", json=body, headers=auth(tokens, "admin"))
    assert started.status_code == 202, started.text
    execution_id = started.json()["execution_id"]
    assert started.json()["deployment"] == "hello"
    shown = wait_for(client, tokens, "hello", execution_id)
    assert shown["status"] == "deployed" and shown["execution"]["status"] == "done", shown["execution"]["error"]
    # the registry's site file gave out_dir: the workflow really ran
    assert (tmp_path / "out" / "greeting.txt").read_text().strip() == "first"
    listed = client.get("/api/v1/admin/deployments", headers=auth(tokens, "admin")).json()
    assert [d["name"] for d in listed] == ["hello"]

    undeployed = client.delete("/api/v1/admin/deployments/hello", headers=auth(tokens, "admin"))
    assert undeployed.status_code == 202, undeployed.text
    deadline = time.monotonic() + 300
    while (gone := client.get("/api/v1/admin/deployments/hello", headers=auth(tokens, "admin"))).status_code == 200:
        execution = gone.json()["execution"]
        assert execution["id"] != undeployed.json()["execution_id"] or execution["status"] == "running", execution
        assert time.monotonic() < deadline, "the undeploy did not end within 300 s"
        time.sleep(0.2)
    assert gone.status_code == 404  # an undeployed deployment is forgotten
    assert client.get("/api/v1/admin/deployments", headers=auth(tokens, "admin")).json() == []


def test_deploying_what_the_registry_does_not_have_is_refused(service):
    client, tokens, _ = service
    admin = auth(tokens, "admin")
    missing = client.post("/api/v1/admin/deployments", json={"name": "x", "workflow": "lab/nothing"}, headers=admin)
    assert missing.status_code == 404 and "lab/nothing" in missing.text
    # a name that could be a path is refused by the model, naming the field
    bad = client.post("/api/v1/admin/deployments", json={"name": "../x", "workflow": "lab/greet"}, headers=admin)
    assert bad.status_code == 422 and "name" in bad.text
    assert client.get("/api/v1/admin/deployments/x", headers=admin).status_code == 404
    assert client.delete("/api/v1/admin/deployments/x", headers=admin).status_code == 404
