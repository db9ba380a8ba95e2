"""schemathesis over the app's own OpenAPI, against the real server: no 5xx, and every response
matches its documented status, content type and schema, for every operation (the SSE streams
are left to tests/test_api.py: an endless response is not a schema case)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance, status_code_conformance)

from tests.test_api import seeded_api


@pytest.fixture(scope="module")
def fuzz_api(pg_store, chdb_url):
    with seeded_api(pg_store, chdb_url) as a:
        yield a


@pytest.fixture(scope="module")
def api_schema(fuzz_api):
    return schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json").exclude(path_regex="stream$")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case, fuzz_api):
    case.call_and_validate(headers=fuzz_api.h(fuzz_api.a, "admin"), timeout=60,
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


def test_every_documented_route_declares_its_role(fuzz_api):
    spec = fuzz_api.http.get("/openapi.json").json()
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
    assert len(ops) >= 20
    for method, path, op in ops:
        if path in ("/healthz", "/readyz"):
            assert "x-required-role" not in op
            continue
        assert op.get("x-required-role") in ("viewer", "responder", "approver", "admin"), (method, path)
        assert "HTTPBearer" in str(op.get("security")), (method, path)
        assert {"401", "403", "422", "429"} <= set(op["responses"]), (method, path)
