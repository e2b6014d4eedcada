"""schemathesis over the generated OpenAPI document: every operation, with a valid token, gets generated
requests (valid ones, and malformed ones: GenerationMode.NEGATIVE); no reply is a 5xx, every reply matches
the document (status codes, content types, bodies). On a home with a deployed, exposed workflow so that
the routes have data."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from orchestrator.api import Orchestrator
from orchestrator.serve.app import create_app

JOBS = Path(__file__).resolve().parents[1] / "integration" / "data" / "jobs.yaml"
EXAMPLES = 30


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    home, out = root / "home", root / "out"
    out.mkdir()
    api = Orchestrator(home)
    assert api.deploy("jobs", str(JOBS), {"out_dir": str(out)}).outcome.ok
    api.expose("jobs", "exec_job", "jobs@local@exec_job")
    token = api.create_user("admin", admin=True)
    api.close()
    return create_app(home, (root / "data",), resume=False), token


def test_no_server_error_and_every_reply_matches_the_document(served):
    app, token = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    failures: dict[str, str] = {}
    calls: list[int] = []
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            # unknown query parameters and headers are ignored, as HTTP servers do: the one check that would
            # demand their refusal is left out; bodies and declared parameters are still refused (422)
            response = case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                              excluded_checks=[negative_data_rejection])
            calls.append(response.status_code)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - every operation is tried; all failures reported at once
            failures[f"{operation.label} ({mode.value})"] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert len(calls) >= 10 * len(operations) and max(calls) < 500 and 422 in calls
    print(f"schemathesis: {len(operations)} operations, {len(calls)} requests, statuses {sorted(set(calls))}")
