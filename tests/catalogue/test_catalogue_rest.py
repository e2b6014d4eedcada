"""The catalogue over `orch serve`: any signed-in user lists and reads records, only an admin adds and
removes them; 401 without a valid token, 403 for a user who is not an admin, 404 for an unknown id, 409 for
an id taken, 422 for a record the catalogue refuses (the field named)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from orchestrator.api import Orchestrator
from orchestrator.serve.app import create_app

RECORD = {"id": "sample", "title": "A sample", "locations": ["data:/data/sample", "https://example.org/s.tar.gz"],
          "size": 12, "sha256": "12" * 32, "licence": "CC0-1.0", "keywords": ["text"], "created_by": "curator"}


@pytest.fixture
def service(tmp_path):
    home = tmp_path / "home"
    api = Orchestrator(home)
    tokens = {"admin": api.create_user("admin", admin=True), "alice": api.create_user("alice")}
    api.close()
    with TestClient(create_app(home, resume=False)) as client:
        yield client, tokens, home


def auth(tokens: dict, who: str) -> dict:
    return {"Authorization": f"Bearer {tokens[who]}"}


def test_users_read_admins_write(service):
    client, tokens, home = service
    assert client.get("/api/v1/catalogue", headers=auth(tokens, "alice")).json() == []
    added = client.post("/api/v1/catalogue", headers=auth(tokens, "admin"), json=RECORD)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body == {**RECORD, "created": body["created"], "description": ""} and body["created"].endswith("Z")
    assert client.get("/api/v1/catalogue", headers=auth(tokens, "alice")).json() == [body]
    assert client.get("/api/v1/catalogue/sample", headers=auth(tokens, "alice")).json() == body
    # the API's records are the CLI's: the same file
    assert [r.id for r in Orchestrator(home).catalogue()] == ["sample"]

    assert client.delete("/api/v1/catalogue/sample", headers=auth(tokens, "alice")).status_code == 403
    assert client.delete("/api/v1/catalogue/sample", headers=auth(tokens, "admin")).status_code == 204
    gone = client.get("/api/v1/catalogue/sample", headers=auth(tokens, "alice"))
    assert gone.status_code == 404 and "no record 'sample'" in gone.json()["detail"]
    assert client.delete("/api/v1/catalogue/sample", headers=auth(tokens, "admin")).status_code == 404


def test_tokens_and_roles(service):
    client, tokens, _ = service
    for method, path in (("get", "/api/v1/catalogue"), ("get", "/api/v1/catalogue/sample"),
                         ("post", "/api/v1/catalogue"), ("delete", "/api/v1/catalogue/sample")):
        kwargs = {"json": RECORD} if method == "post" else {}
        assert getattr(client, method)(path, **kwargs).status_code == 401
        wrong = getattr(client, method)(path, headers={"Authorization": "Bearer wrong"}, **kwargs)
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    refused = client.post("/api/v1/catalogue", headers=auth(tokens, "alice"), json=RECORD)
    assert refused.status_code == 403
    assert client.get("/api/v1/catalogue", headers=auth(tokens, "admin")).json() == []


def test_bad_records_and_taken_ids(service):
    client, tokens, _ = service
    admin = auth(tokens, "admin")
    assert client.post("/api/v1/catalogue", headers=admin, json=RECORD).status_code == 201
    taken = client.post("/api/v1/catalogue", headers=admin, json=RECORD)
    assert taken.status_code == 409 and "already in the catalogue" in taken.json()["detail"]
    # refused by the request's model: the field is in `loc`
    malformed = client.post("/api/v1/catalogue", headers=admin, json={**RECORD, "id": "x", "sha256": "short"})
    assert malformed.status_code == 422
    assert [e["loc"] for e in malformed.json()["detail"]] == [["body", "sha256"]]
    unknown_field = client.post("/api/v1/catalogue", headers=admin, json={**RECORD, "id": "y", "license": "MIT"})
    assert unknown_field.status_code == 422
    # the model has the catalogue's shapes (what its schema allows the catalogue accepts): the field is in `loc`
    for changes, field in (({"locations": ["relative/path"]}, ["body", "locations", 0]),
                           ({"title": "two\nlines"}, ["body", "title"]), ({"keywords": [" "]}, ["body", "keywords", 0]),
                           ({"created": "2024-05-01T12:00:00Z"}, ["body", "created"])):
        refused = client.post("/api/v1/catalogue", headers=admin, json={**RECORD, "id": "z", **changes})
        assert refused.status_code == 422, refused.text
        assert [e["loc"] for e in refused.json()["detail"]] == [field]
    # and what only the catalogue checks is refused by it, the field named in the sentence
    twice = client.post("/api/v1/catalogue", headers=admin, json={**RECORD, "id": "z", "locations": ["/a", "/a"]})
    assert twice.status_code == 422 and twice.json()["detail"] == "the record: locations: lists a place twice"
    assert [r["id"] for r in client.get("/api/v1/catalogue", headers=admin).json()] == ["sample"]


def test_the_routes_are_in_the_openapi_document(service):
    client, _, _ = service
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/v1/catalogue"]) == {"get", "post"}
    assert set(paths["/api/v1/catalogue/{record_id}"]) == {"get", "delete"}
