"""POST /v1/analyze on real photos: attributes per face, only those asked for, and bad input."""

from __future__ import annotations

import pytest

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from faceprint.service.app import ServiceSettings, create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory, data_dir):
    data = tmp_path_factory.mktemp("svc-analyze")
    app = create_app(ServiceSettings(data, profile="fast", workers=1, queue=4))
    admin, _ = app.state.service.keys.create("admin", ["*"])
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {admin}"
        yield c


def _image(path):
    return [("image", (path.name, path.read_bytes(), "image/jpeg"))]


def test_analyze_gives_pose_eyes_and_quality_of_each_face(client, data_dir):
    r = client.post("/v1/analyze?attributes=pose,eyes,quality", files=_image(data_dir / "video" / "two_people.jpg"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["attributes"] == ["pose", "eyes", "quality"] and (body["width"], body["height"]) == (1126, 661)
    assert len(body["faces"]) == 2 and body["reason"] is None
    for face in body["faces"]:
        assert set(face["pose"]) == {"yaw", "pitch", "roll"} and abs(face["pose"]["yaw"]) < 30
        assert face["eyes"]["open"] is True and face["quality"]["usable"] is True
        assert face["age"] is None and face["expression"] is None and face["not_estimated"] == {}
    obama = min(body["faces"], key=lambda f: f["face"]["box"][0])  # the left one, turned to his left
    assert obama["pose"]["yaw"] > 10


def test_analyze_without_a_face_and_with_bad_input(client, data_dir):
    import io

    import numpy as np
    from PIL import Image

    grey = io.BytesIO()
    Image.fromarray(np.full((200, 300, 3), 120, np.uint8)).save(grey, format="PNG")
    r = client.post("/v1/analyze?attributes=pose", files=[("image", ("wall.png", grey.getvalue(), "image/png"))])
    assert r.status_code == 200 and r.json()["faces"] == []
    assert r.json()["reason"].startswith("wall.png: no face found")
    bad = client.post("/v1/analyze", files=[("image", ("c.jpg", b"\xff\xd8\xff not a jpeg", "image/jpeg"))])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "image_decode_error"
    unknown = client.post("/v1/analyze?attributes=mood", files=_image(data_dir / "video" / "obama.jpg"))
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_attribute"
    assert "choose from" in unknown.json()["error"]["message"]


def test_analyze_is_in_the_openapi_document_with_its_body(client):
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/analyze"]["post"]
    assert {"multipart/form-data", "application/json"} <= set(post["requestBody"]["content"])
    assert "AnalyzeOut" in spec["components"]["schemas"] and "PoseOut" in spec["components"]["schemas"]
