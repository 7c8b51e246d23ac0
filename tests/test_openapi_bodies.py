"""The OpenAPI document describes the fields of every image endpoint's request body (multipart and JSON).

Swagger UI and client generators read ``/openapi.json``; an image endpoint whose body schema had
empty ``properties`` showed no fields at all. No models are loaded (``warm=False``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from faceprint.service.app import ServiceSettings, create_app

# path -> (file fields, other fields the body may carry)
BODIES = {
    "/v1/detect": ({"image"}, set()),
    "/v1/verify": ({"a", "b"}, set()),
    "/v1/collections/{collection}/persons/{person}/faces": ({"images"}, {"metadata"}),
    "/v1/collections/{collection}/persons/{person}/verify": ({"image"}, set()),
    "/v1/collections/{collection}/identify": ({"image"}, set()),
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    app = create_app(ServiceSettings(data_dir=tmp_path_factory.mktemp("openapi"), warm=False, workers=1))
    with TestClient(app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _schema(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@pytest.mark.parametrize("path", sorted(BODIES))
def test_image_endpoint_bodies_list_their_fields(spec, path):
    files, others = BODIES[path]
    body = spec["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"multipart/form-data", "application/json"}
    form = _schema(spec, body["content"]["multipart/form-data"]["schema"])
    as_json = _schema(spec, body["content"]["application/json"]["schema"])
    for schema in (form, as_json):
        assert files | others <= set(schema["properties"]), (path, sorted(schema["properties"]))
        assert files <= set(schema.get("required", ())), path
        for name in files | others:
            assert schema["properties"][name].get("description"), (path, name)
    for name in files:  # a file in the form, a base64 string in JSON
        field = form["properties"][name]
        item = field["items"] if field.get("type") == "array" else field
        assert (item["type"], item["format"]) == ("string", "binary"), (path, name, field)
        field = as_json["properties"][name]
        item = field["items"] if field.get("type") == "array" else field
        assert item["type"] == "string" and "base64" in field["description"], (path, name, field)


def test_enrol_json_metadata_is_an_object(spec):
    body = spec["paths"]["/v1/collections/{collection}/persons/{person}/faces"]["post"]["requestBody"]
    metadata = _schema(spec, body["content"]["application/json"]["schema"])["properties"]["metadata"]
    assert any(option.get("type") == "object" for option in metadata["anyOf"]), metadata
