"""Property-based fuzzing: arbitrary bytes and arbitrary JSON to every route never get a 5xx."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
POST_ROUTES = ("/predict", "/v1/models/mugs:predict")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
image_like_json = st.fixed_dictionaries(
    {},
    optional={
        "image": json_values | st.text(),
        "images": st.lists(st.text(max_size=200) | json_values, max_size=4),
    },
)
tfserving_like_json = st.fixed_dictionaries(
    {
        "instances": st.lists(
            st.dictionaries(
                st.sampled_from(["b64", "bytes", "image_bytes", "x"]),
                json_values | st.text(),
                max_size=2,
            ),
            max_size=4,
        )
        | json_values
    }
)


@FUZZ
@given(data=st.binary(max_size=3000), filename=st.text(max_size=20))
def test_arbitrary_bytes_as_an_upload(client: TestClient, data: bytes, filename: str) -> None:
    response = client.post("/predict", files={"image": (filename or "x", data)})
    assert response.status_code < 500
    assert response.headers["content-type"] == "application/json"


@FUZZ
@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/json",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "text/plain",
            "",
        ]
    ),
    route=st.sampled_from(POST_ROUTES),
)
def test_arbitrary_bytes_as_a_body(
    client: TestClient, body: bytes, content_type: str, route: str
) -> None:
    response = client.post(route, content=body, headers={"content-type": content_type})
    assert response.status_code < 500


@FUZZ
@given(body=json_values | image_like_json | tfserving_like_json, route=st.sampled_from(POST_ROUTES))
def test_arbitrary_json(client: TestClient, body: object, route: str) -> None:
    response = client.post(route, json=body)
    assert response.status_code < 500
    assert response.headers["content-type"] == "application/json"


@FUZZ
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH"]),
    route=st.sampled_from(
        [*POST_ROUTES, "/health", "/metrics", "/v1/models/mugs", "/nope", "/predict/../health"]
    ),
)
def test_other_methods_and_paths(client: TestClient, method: str, route: str) -> None:
    assert client.request(method, route).status_code < 500
