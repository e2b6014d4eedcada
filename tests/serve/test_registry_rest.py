"""GET /api/v1/registry: the registries, their workflows and versions, for admins alone (401 without a
token, 403 for a scientist); in the generated OpenAPI document."""

from __future__ import annotations

import shutil
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
