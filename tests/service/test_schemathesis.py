"""Schemathesis against the app's own OpenAPI schema: requests generated from every documented
operation, sent over real HTTP to the live service, never get a 5xx.

(Schemathesis' own pytest plugin does not run under this pytest version, so its strategies
are driven by hypothesis directly, one test per operation.)"""

from __future__ import annotations

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("POST", "/predict"),
    ("POST", "/explain"),
    ("POST", "/feedback"),
    ("POST", "/v1/models/{model_name}:predict"),
    ("POST", "/v1/models/{model_name}/versions/{version}:predict"),
    ("POST", "/v1/models/{model_name}/labels/{label}:predict"),
    ("POST", "/v1/models/{model_name}:explain"),
    ("GET", "/v1/models/{model_name}"),
    ("GET", "/v1/models/{model_name}/versions/{version}"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2"),
    ("GET", "/v2/models/{model_name}"),
    ("GET", "/v2/models/{model_name}/versions/{version}"),
    ("GET", "/v2/models/{model_name}/ready"),
    ("GET", "/v2/models/{model_name}/versions/{version}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
    ("POST", "/v2/models/{model_name}/versions/{version}/infer"),
]


@pytest.fixture(scope="module")
def api_schema(live_url: str):
    return schemathesis.openapi.from_dict(httpx2.get(f"{live_url}/openapi.json").json())


def test_every_documented_operation_is_fuzzed(api_schema) -> None:
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_operation_answers_with_a_server_error(
    api_schema, live_url: str, method: str, path: str
) -> None:
    operation = api_schema[path][method]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case) -> None:
        response = case.call(base_url=live_url, timeout=30)
        assert response.status_code < 500, (case.method, case.path, response.text[:300])

    check()
