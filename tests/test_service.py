"""The REST service, in process: real faces through every endpoint, keys, isolation and limits."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from faceprint.service.app import ServiceSettings, create_app
from faceprint.service.inference import BusyError, InferencePool, InferenceTimeoutError


@pytest.fixture(scope="module")
def files(data_dir):
    knn = data_dir / "knn-small"
    return {
        "obama": [knn / "train/obama/obama.jpg", knn / "train/obama/obama2.jpg"],
        "biden": [knn / "train/biden/biden.jpg", knn / "train/biden/biden2.jpg"],
        "group": knn / "test/obama_and_biden.jpg",
        "obama_probe": knn / "test/obama1.jpg",
        "crowd": data_dir / "video/multiface.jpg",
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory, data_dir):
    data = tmp_path_factory.mktemp("svc")
    settings = ServiceSettings(data, profile="fast", workers=2, queue=8, max_pixels=4_000_000,
                               max_upload_bytes=3 * 1024 * 1024, audit_log=data / "audit.log")
    app = create_app(settings)
    keys = app.state.service.keys
    admin, _ = keys.create("admin", ["*"])
    with TestClient(app) as client:
        yield client, app, admin


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload(field: str, *paths) -> list:
    return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def new_key(client, admin, role, collections):
    r = client.post("/v1/keys", json={"role": role, "collections": collections}, headers=auth(admin))
    assert r.status_code == 201, r.text
    return r.json()["key"]


@pytest.fixture(scope="module")
def team(service, files):
    """Collection 'team' with obama and biden enrolled."""
    client, _, admin = service
    assert client.post("/v1/collections", json={"name": "team"}, headers=auth(admin)).status_code == 201
    for person in ("obama", "biden"):
        r = client.post(f"/v1/collections/team/persons/{person}/faces", files=upload("images", *files[person]),
                        data={"metadata": '{"role": "test"}'}, headers=auth(admin))
        assert r.status_code == 201, r.text
        assert len(r.json()["faces_added"]) == 2
    return "team"


def test_health_ready_and_openapi(service):
    client, _, _ = service
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["profiles_loaded"] == ["fast"]
    spec = client.get("/openapi.json").json()
    for path in ("/v1/detect", "/v1/verify", "/v1/collections/{collection}/identify",
                 "/v1/collections/{collection}/persons/{person}/faces", "/v1/keys"):
        assert path in spec["paths"]
    docs = client.get("/docs")  # Swagger UI from the service's own files (swagger-ui-bundle-v2), no CDN
    assert docs.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_web_page_is_served_without_external_resources(service):
    client, _, _ = service
    page = client.get("/")
    assert page.status_code == 200 and "Identify faces in a photo" in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/camera.js"):
        body = client.get(asset)
        assert body.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text


def test_identify_group_photo_names_both_and_unknowns(service, team, files):
    client, _, admin = service
    r = client.post("/v1/collections/team/identify", files=upload("image", files["group"]), headers=auth(admin))
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert sorted(f["person"] for f in faces if not f["skipped"]) == ["biden", "obama"]
    (child,) = [f for f in faces if f["skipped"]]  # the child in profile: reported, not searched
    assert re.fullmatch(r"low quality \(profile, 0\.\d\d\)", child["skipped"]), child["skipped"]
    assert child["candidates"] == [] and child["person"] is None and child["face"]["quality"] < 0.25
    crowd = client.post("/v1/collections/team/identify?top_k=2", files=upload("image", files["crowd"]),
                        headers=auth(admin)).json()
    assert len(crowd["faces"]) >= 3
    assert all(f["unknown"] and f["person"] is None for f in crowd["faces"])
    assert all(len(f["candidates"]) == 2 for f in crowd["faces"])


def test_verify_images_and_person(service, team, files):
    client, _, admin = service
    same = client.post("/v1/verify", files=upload("a", files["obama"][0]) + upload("b", files["obama_probe"]),
                       headers=auth(admin)).json()
    diff = client.post("/v1/verify", files=upload("a", files["obama"][0]) + upload("b", files["biden"][0]),
                       headers=auth(admin)).json()
    assert same["is_match"] and not diff["is_match"]
    probe = upload("image", files["obama_probe"])
    assert client.post("/v1/collections/team/persons/obama/verify", files=probe, headers=auth(admin)).json()["is_match"]
    assert not client.post("/v1/collections/team/persons/biden/verify", files=probe,
                           headers=auth(admin)).json()["is_match"]


def test_detect_accepts_base64_json(service, files):
    client, _, admin = service
    b64 = base64.b64encode(files["group"].read_bytes()).decode()
    r = client.post("/v1/detect", json={"image": b64}, headers=auth(admin))
    assert r.status_code == 200
    usable = [f for f in r.json()["faces"] if not f["quality_reasons"]]
    assert len(usable) == 2 and len(r.json()["faces"]) >= 2


def test_persons_list_get_and_metadata(service, team):
    client, _, admin = service
    people = client.get("/v1/collections/team/persons", headers=auth(admin)).json()
    assert {p["name"] for p in people} >= {"obama", "biden"}
    obama = client.get("/v1/collections/team/persons/obama", headers=auth(admin)).json()
    assert obama["metadata"] == {"role": "test"} and len(obama["faces"]) == 2
    assert not any(f["has_image"] for f in obama["faces"])  # not kept unless the collection says so
    missing = client.get("/v1/collections/team/persons/nobody", headers=auth(admin))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "person_not_found"


def test_key_for_one_collection_never_reaches_another(service, team, files):
    client, _, admin = service
    assert client.post("/v1/collections", json={"name": "other"}, headers=auth(admin)).status_code == 201
    writer_team = new_key(client, admin, "writer", ["team"])
    for method, path, kwargs in [
        ("get", "/v1/collections/other/persons", {}),
        ("post", "/v1/collections/other/persons/x/faces", {"files": upload("images", files["biden"][0])}),
        ("post", "/v1/collections/other/identify", {"files": upload("image", files["group"])}),
        ("delete", "/v1/collections/other/persons/x", {}),
        ("delete", "/v1/collections/other", {}),
    ]:
        r = getattr(client, method)(path, headers=auth(writer_team), **kwargs)
        assert r.status_code == 403, (path, r.text)
    # The answer for a collection that exists and one that does not is the same.
    exists = client.get("/v1/collections/other", headers=auth(writer_team))
    absent = client.get("/v1/collections/no-such", headers=auth(writer_team))
    assert exists.status_code == absent.status_code == 403
    assert exists.json()["error"]["code"] == absent.json()["error"]["code"] == "forbidden"
    listed = client.get("/v1/collections", headers=auth(writer_team)).json()
    assert [c["name"] for c in listed] == ["team"]
    assert client.get("/v1/collections/other/persons", headers=auth(admin)).json() == []


def test_roles(service, team, files):
    client, _, admin = service
    reader = new_key(client, admin, "reader", ["team"])
    writer = new_key(client, admin, "writer", ["team"])
    enrol = upload("images", files["biden"][0])
    assert client.post("/v1/collections/team/persons/x/faces", files=enrol, headers=auth(reader)).status_code == 403
    assert client.delete("/v1/collections/team/persons/obama", headers=auth(reader)).status_code == 403
    assert client.post("/v1/collections/team/identify", files=upload("image", files["group"]),
                       headers=auth(reader)).status_code == 200
    assert client.post("/v1/keys", json={"role": "reader", "collections": ["team"]},
                       headers=auth(writer)).status_code == 403
    assert client.post("/v1/collections", json={"name": "x"}, headers=auth(writer)).status_code == 403
    for bad in ({}, {"X-API-Key": "fp_nope_nope"}, {"Authorization": "Bearer " + reader + "x"}):
        r = client.get("/v1/collections/team", headers=bad)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_keys_are_stored_hashed(service):
    client, app, admin = service
    key = new_key(client, admin, "reader", ["team"])
    stored = (app.state.service.settings.data_dir / "keys.sqlite").read_bytes()
    wal = app.state.service.settings.data_dir / "keys.sqlite-wal"
    stored += wal.read_bytes() if wal.exists() else b""
    secret = key.split("_", 2)[2]
    assert secret.encode() not in stored and admin.split("_", 2)[2].encode() not in stored
    assert client.get("/v1/collections/team", headers=auth(key)).status_code == 200
    key_id = key.split("_")[1]
    assert client.delete(f"/v1/keys/{key_id}", headers=auth(admin)).status_code == 204
    assert client.get("/v1/collections/team", headers=auth(key)).status_code == 401


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_limits_and_bad_input(service, team, files, tmp_path):
    client, _, admin = service
    h = auth(admin)
    big = client.post("/v1/detect", files=[("image", ("big.bin", b"\0" * (4 * 1024 * 1024), "image/jpeg"))], headers=h)
    assert big.status_code == 413 and big.json()["error"]["code"] == "upload_too_large"
    huge = client.post("/v1/detect", files=[("image", ("huge.png", _png(2100, 2100), "image/png"))], headers=h)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "image_too_large"
    corrupt = client.post("/v1/detect", files=[("image", ("c.jpg", files["group"].read_bytes()[:2000], "image/jpeg"))],
                          headers=h)
    assert corrupt.status_code == 422 and corrupt.json()["error"]["code"] == "image_decode_error"
    assert "c.jpg" in corrupt.json()["error"]["message"] and "re-export" in corrupt.json()["error"]["message"]
    noface = client.post("/v1/collections/team/persons/blank/faces",
                         files=[("images", ("blank.png", _png(200, 200), "image/png"))], headers=h)
    assert noface.status_code == 422 and noface.json()["error"]["code"] == "no_face"
    assert noface.json()["error"]["message"].startswith("blank.png: no face found; give a photo")  # the upload's name, not its bytes
    for path in ("/v1/detect", "/v1/collections/team/identify"):
        text = client.post(path, files=[("image", ("notes.txt", b"just some words\n" * 20, "text/plain"))], headers=h)
        assert text.status_code == 422 and text.json()["error"]["code"] == "image_decode_error"
        assert text.json()["error"]["message"].startswith("notes.txt: ") and "<bytes" not in text.text
    assert client.get("/v1/collections/team/persons/blank", headers=h).status_code == 404  # nothing written
    two = client.post("/v1/verify", files=upload("a", files["group"]), headers=h)
    assert two.status_code == 400 and two.json()["error"]["code"] == "bad_request"
    assert client.post("/v1/detect", json={"image": "not base64!"}, headers=h).json()["error"]["code"] == "bad_request"
    assert client.post("/v1/collections", json={"name": "../etc"}, headers=h).status_code == 422
    assert client.post("/v1/collections", json={"name": "z", "profile": "nope"}, headers=h).status_code == 422
    assert client.post("/v1/collections/team/identify?top_k=0", files=upload("image", files["group"]),
                       headers=h).status_code == 422


@pytest.fixture(scope="module")
def group_faces(service, files):
    """/v1/detect on the group photo: Obama (largest), Biden, the child in profile (not usable)."""
    client, _, admin = service
    faces = client.post("/v1/detect", files=upload("image", files["group"]), headers=auth(admin)).json()["faces"]
    again = client.post("/v1/detect", files=upload("image", files["group"]), headers=auth(admin)).json()["faces"]
    assert [f["box"] for f in again] == [f["box"] for f in faces]  # the order is stable
    assert [f["index"] for f in faces] == [0, 1, 2] and [f["usable"] for f in faces] == [True, True, False]
    return faces


def _stored_box(client, h, collection, person) -> list[float]:
    (face,) = client.get(f"/v1/collections/{collection}/persons/{person}", headers=h).json()["faces"]
    return face["box"]


def _decoded(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"), np.float32)


def _crop(path, box, size) -> np.ndarray:
    """The photo around ``box`` (a quarter of its size on every side), resized to ``size`` (w, h)."""
    x, y, w, h = box
    with Image.open(path) as im:
        region = im.convert("RGB").crop((int(x - w / 4), int(y - h / 4), int(x + w * 1.25), int(y + h * 1.25)))
        return np.asarray(region.resize(size), np.float32)


def test_enrol_from_a_group_photo_needs_the_face_named(service, files, group_faces):
    client, _, admin = service
    h = auth(admin)
    assert client.post("/v1/collections", json={"name": "pick"}, headers=h).status_code == 201
    refused = client.post("/v1/collections/pick/persons/joe/faces", files=upload("images", files["group"]), headers=h)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "multiple_faces"
    message = refused.json()["error"]["message"]
    assert message.startswith("obama_and_biden.jpg: 2 usable faces found where one is required")
    assert "'face'" in message and "'box'" in message and "largest=true" in message
    assert client.get("/v1/collections/pick/persons/joe", headers=h).status_code == 404  # nothing stored

    biden = 1  # the second largest face: group_faces lists Obama first
    r = client.post("/v1/collections/pick/persons/joe/faces", files=upload("images", files["group"]),
                    data={"face": str(biden)}, headers=h)
    assert r.status_code == 201, r.text
    assert len(r.json()["faces_added"]) == 1 and _stored_box(client, h, "pick", "joe") == group_faces[biden]["box"]
    thumb = _decoded(r.json()["thumbnails"][0])
    assert max(thumb.shape[:2]) == 96
    size = (thumb.shape[1], thumb.shape[0])
    own = np.abs(thumb - _crop(files["group"], group_faces[biden]["box"], size)).mean()
    other = np.abs(thumb - _crop(files["group"], group_faces[0]["box"], size)).mean()
    assert own < 10 < other, (own, other)  # the thumbnail shows the face that was enrolled
    # The template is Biden's: his own portrait is named joe, Obama's is not.
    found = client.post("/v1/collections/pick/identify", files=upload("image", files["biden"][0]), headers=h).json()
    assert [f["person"] for f in found["faces"]] == ["joe"]
    probe = client.post("/v1/collections/pick/identify", files=upload("image", files["obama_probe"]), headers=h).json()
    assert [f["unknown"] for f in probe["faces"]] == [True]

    person = client.post("/v1/collections/pick/persons/joe/verify", files=upload("image", files["group"]), headers=h)
    assert person.status_code == 422 and person.json()["error"]["code"] == "multiple_faces"
    for index, same in ((biden, True), (0, False)):
        r = client.post("/v1/collections/pick/persons/joe/verify", files=upload("image", files["group"]),
                        data={"face": str(index)}, headers=h)
        assert r.status_code == 200 and r.json()["is_match"] is same, r.text
    pair = upload("a", files["group"]) + upload("b", files["biden"][1])
    assert client.post("/v1/verify", files=pair, headers=h).json()["error"]["code"] == "multiple_faces"
    assert client.post("/v1/verify", files=pair, data={"face_a": str(biden)}, headers=h).json()["is_match"]
    assert not client.post("/v1/verify", files=pair, data={"largest": "true"}, headers=h).json()["is_match"]


def test_enrol_names_the_face_by_box_largest_or_json(service, files, group_faces):
    client, _, admin = service
    h = auth(admin)
    client.post("/v1/collections", json={"name": "boxes"}, headers=h)
    url = "/v1/collections/boxes/persons/{}/faces?allow_duplicate=true"  # Biden is enrolled under several names
    x, y, w, h_ = group_faces[1]["box"]
    near = f"{x + 12},{y - 9},{w - 5},{h_ + 6}"  # a hand-drawn box around Biden's face
    r = client.post(url.format("bybox"), files=upload("images", files["group"]),
                    data={"box": near}, headers=h)
    assert r.status_code == 201, r.text
    assert _stored_box(client, h, "boxes", "bybox") == group_faces[1]["box"]
    r = client.post(url.format("big"), files=upload("images", files["group"]),
                    data={"largest": "true"}, headers=h)
    assert r.status_code == 201 and _stored_box(client, h, "boxes", "big") == group_faces[0]["box"]
    b64 = base64.b64encode(files["group"].read_bytes()).decode()
    r = client.post(url.format("json"), json={"images": [b64], "face": 1}, headers=h)
    assert r.status_code == 201 and _stored_box(client, h, "boxes", "json") == group_faces[1]["box"]
    # One `face` per image, empty for a portrait with one face.
    two = upload("images", files["biden"][0], files["group"])
    r = client.post(url.format("two"), files=two, data={"face": ["", "1"]}, headers=h)
    assert r.status_code == 201 and len(r.json()["faces_added"]) == 2 and len(r.json()["thumbnails"]) == 2

    group = upload("images", files["group"])
    for data, code, text in [
        ({"box": "0,0,60,60"}, "no_face", "best overlap IoU 0.00 < 0.5"),
        ({"face": "2"}, "no_face", "is not usable (low quality (profile"),
        ({"face": "3"}, "no_face", "no face 3: 3 face(s) detected"),
        ({"face": "x"}, "bad_request", "must be a face index"),
        ({"face": "1", "box": near}, "bad_request", "not both"),
        ({"face": ["1", "0"]}, "bad_request", "2 value(s) for 1 image(s)"),
        ({"box": "1,2,3"}, "bad_request", "x,y,w,h"),
    ]:
        r = client.post(url.format("bad"), files=group, data=data, headers=h)
        assert r.json()["error"]["code"] == code and text in r.json()["error"]["message"], (data, r.text)
        assert r.status_code == (422 if code == "no_face" else 400)
    assert client.get("/v1/collections/boxes/persons/bad", headers=h).status_code == 404


def test_enrolment_is_all_or_nothing(service, team, files):
    client, _, admin = service
    mixed = upload("images", files["biden"][0]) + [("images", ("blank.png", _png(120, 120), "image/png"))]
    r = client.post("/v1/collections/team/persons/half/faces", files=mixed, headers=auth(admin))
    assert r.status_code == 422
    assert client.get("/v1/collections/team/persons/half", headers=auth(admin)).status_code == 404


def test_kept_images_are_stored_and_erased(service, files):
    client, app, admin = service
    h = auth(admin)
    assert client.post("/v1/collections", json={"name": "kept", "keep_images": True}, headers=h).status_code == 201
    r = client.post("/v1/collections/kept/persons/obama/faces", files=upload("images", *files["obama"]), headers=h)
    face_ids = r.json()["faces_added"]
    listed = client.get("/v1/collections/kept/persons/obama", headers=h).json()["faces"]
    assert [f["has_image"] for f in listed] == [True, True]
    image = client.get(f"/v1/collections/kept/faces/{face_ids[0]}/image", headers=h)
    assert image.status_code == 200 and image.content == files["obama"][0].read_bytes()
    client.delete(f"/v1/collections/kept/faces/{face_ids[1]}", headers=h)
    assert client.get(f"/v1/collections/kept/faces/{face_ids[1]}/image", headers=h).status_code == 404
    assert client.delete("/v1/collections/kept/persons/obama", headers=h).json()["faces_removed"] == 1
    assert client.get(f"/v1/collections/kept/faces/{face_ids[0]}/image", headers=h).status_code == 404
    stored = app.state.service.collections.root / "kept" / "gallery.sqlite"
    assert files["obama"][0].read_bytes()[2000:2064] not in stored.read_bytes()  # erased from the file too


def test_delete_person_then_unknown(service, files):
    client, _, admin = service
    h = auth(admin)
    client.post("/v1/collections", json={"name": "gone"}, headers=h)
    client.post("/v1/collections/gone/persons/obama/faces", files=upload("images", *files["obama"]), headers=h)
    before = client.post("/v1/collections/gone/identify", files=upload("image", files["obama_probe"]), headers=h)
    assert before.json()["faces"][0]["person"] == "obama"
    assert client.delete("/v1/collections/gone/persons/obama", headers=h).status_code == 200
    after = client.post("/v1/collections/gone/identify", files=upload("image", files["obama_probe"]), headers=h)
    assert after.json()["faces"][0]["unknown"]
    assert client.get("/v1/collections/gone/persons", headers=h).json() == []


def test_pool_refuses_past_its_queue_and_times_out():
    pool = InferencePool(workers=1, queue=1, timeout_s=30, fmr=1e-3, max_pixels=1_000_000)
    release = threading.Event()

    async def scenario():
        blocked = asyncio.ensure_future(pool.submit("fast", lambda e: release.wait(30)))
        queued = asyncio.ensure_future(pool.submit("fast", lambda e: "queued"))
        while pool.pending < 2:  # both have taken their slot (submit takes it before its first await)
            await asyncio.sleep(0)
        with pytest.raises(BusyError):
            await pool.submit("fast", lambda e: "refused")
        release.set()
        return await blocked, await queued

    assert asyncio.run(scenario()) == (True, "queued")
    assert pool.pending == 0
    pool.close()

    # A request that times out gives its slot back once its job ends (or is cancelled before it starts).
    slow = InferencePool(workers=1, queue=0, timeout_s=0.05, fmr=1e-3, max_pixels=1_000_000)
    hold = threading.Event()
    with pytest.raises(InferenceTimeoutError):
        asyncio.run(slow.submit("fast", lambda e: hold.wait(30)))
    hold.set()
    slow.close()  # waits for the job; its done-callback has run when this returns
    assert slow.pending == 0


def test_busy_service_answers_429(tmp_path, data_dir):
    settings = ServiceSettings(tmp_path, profile="fast", workers=1, queue=0, warm=False)
    app = create_app(settings)
    admin, _ = app.state.service.keys.create("admin", ["*"])
    started, gate = threading.Event(), threading.Event()
    pool = app.state.service.pool
    with TestClient(app) as client:
        async def hold():
            await pool.submit("fast", lambda e: (started.set(), gate.wait(30)))

        holder = threading.Thread(target=lambda: asyncio.run(hold()))
        holder.start()
        assert started.wait(60), "the holding job never started"  # its slot is taken from here on
        r = client.post("/v1/detect", files=[("image", ("x.png", _png(50, 50), "image/png"))], headers=auth(admin))
        gate.set()
        holder.join()
    assert r.status_code == 429 and r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] == "1"


def test_every_request_is_in_the_audit_log(service, team, files):
    from faceprint.privacy.audit import AuditLog

    client, app, admin = service
    reader = new_key(client, admin, "reader", ["team"])
    client.post("/v1/collections/team/identify", files=upload("image", files["group"]), headers=auth(reader))
    client.get("/v1/collections/other/persons", headers=auth(reader))
    log = AuditLog(app.state.service.settings.audit_log)
    records = list(log.records())
    assert log.verify().ok
    enrolments = [r for r in records if r["action"] == "enroll" and r["collection"] == "team"]
    assert {r["subject"] for r in enrolments} >= {"obama", "biden"}
    reader_id = "key:" + reader.split("_")[1]
    identify, denied = [r for r in records if r["actor"] == reader_id][-2:]
    assert identify["action"] == "identify" and sorted(identify["details"]["matched"]) == ["biden", "obama"]
    assert denied["outcome"] == "denied" and denied["details"]["status"] == 403
    assert b"fp_" not in app.state.service.settings.audit_log.read_bytes()  # no key material in the log


def test_service_with_a_key_stores_only_ciphertext(tmp_path, files):
    from faceprint.gallery import Gallery
    from faceprint.privacy.crypto import GalleryKey, GalleryKeyRequiredError

    key = GalleryKey.generate()
    app = create_app(ServiceSettings(tmp_path, profile="fast", workers=1, warm=False, key=key))
    admin, _ = app.state.service.keys.create("admin", ["*"])
    photo = files["obama"][0].read_bytes()
    with TestClient(app) as client:
        client.post("/v1/collections", json={"name": "sealed", "keep_images": True}, headers=auth(admin))
        r = client.post("/v1/collections/sealed/persons/obama/faces", files=upload("images", files["obama"][0]),
                        headers=auth(admin))
        face_id = r.json()["faces_added"][0]
        assert client.get(f"/v1/collections/sealed/faces/{face_id}/image", headers=auth(admin)).content == photo
        found = client.post("/v1/collections/sealed/identify", files=upload("image", files["obama_probe"]),
                            headers=auth(admin)).json()
        assert found["faces"][0]["person"] == "obama"
        template = app.state.service.collections.gallery("sealed").matrix()[2][0].tobytes()
    path = tmp_path / "collections" / "sealed" / "gallery.sqlite"
    stored = path.read_bytes() + (path.with_name("gallery.sqlite-wal").read_bytes()
                                  if path.with_name("gallery.sqlite-wal").exists() else b"")
    assert template[:32] not in stored and photo[1000:1064] not in stored
    with pytest.raises(GalleryKeyRequiredError):
        Gallery(path)


def test_liveness_endpoint_answers_per_face_with_the_attack_type(service, data_dir):
    client, _, admin = service
    samples = data_dir / "antispoof" / "silent-face-samples"
    live = client.post("/v1/liveness", files=upload("image", samples / "image_T1.jpg"), headers=auth(admin))
    assert live.status_code == 200 and live.json()["is_live"] is True
    face = live.json()["faces"][0]
    assert len(face["box"]) == 4 and face["liveness"]["score"] > 0.9 and face["liveness"]["reason"] is None
    spoof = client.post("/v1/liveness", files=upload("image", samples / "image_F2.jpg"), headers=auth(admin)).json()
    check = spoof["faces"][0]["liveness"]
    assert spoof["is_live"] is False and check["attack_type"] == "screen" and check["attack_probability"] > 0.9
    assert "screen attack suspected" in check["reason"] and isinstance(check["cues"], list)
    assert face["liveness"]["judged"] is True
    grey = client.post("/v1/liveness", files=upload("image", data_dir / "yale" / "subject01.happy"),
                       headers=auth(admin)).json()["faces"][0]["liveness"]
    assert grey["judged"] is False and grey["is_live"] is False and "greyscale image: not judged" in grey["reason"]
    corrupt = client.post("/v1/liveness", files=[("image", ("broken.jpg", b"\xff\xd8 not a jpeg", "image/jpeg"))],
                          headers=auth(admin))
    assert corrupt.status_code == 422 and corrupt.json()["error"]["code"] == "image_decode_error"
    assert "broken.jpg" in corrupt.json()["error"]["message"]
    photo = Image.open(data_dir / "video" / "obama.jpg")
    suit = io.BytesIO()
    photo.crop((0, int(photo.height * 0.7), photo.width, photo.height)).save(suit, "JPEG")  # no face in it
    none = client.post("/v1/liveness", files=[("image", ("suit.jpg", suit.getvalue(), "image/jpeg"))],
                       headers=auth(admin)).json()
    assert none["is_live"] is False and none["faces"] == [] and "no face found in suit.jpg" in none["reason"]
    assert client.post("/v1/liveness", files=upload("image", samples / "image_T1.jpg")).status_code == 401


def test_wrong_fields_and_bad_base64_say_what_was_received(service, team, files):
    client, app, admin = service
    h = auth(admin)
    wrong = client.post("/v1/detect", files=[("photo", ("a.jpg", files["obama_probe"].read_bytes(), "image/jpeg"))],
                        headers=h)
    assert wrong.status_code == 400
    assert "field 'image', got 0; fields received: 'photo'" in wrong.json()["error"]["message"]
    bad = client.post("/v1/detect", json={"image": ["not base64!"]}, headers=h)
    assert bad.status_code == 400 and "image 1 of field 'image' is not valid base64" in bad.json()["error"]["message"]
    enrol = client.post(f"/v1/collections/{team}/persons/x/faces", files=[("image", ("a.jpg", b"x", "image/jpeg"))],
                        headers=h)
    assert enrol.status_code == 400 and "fields received: 'image'" in enrol.json()["error"]["message"]


def test_metrics_label_the_documentation_routes(service):
    client, _, _ = service
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/docs/static/swagger-ui.css").status_code == 200
    assert client.get("/no/such/path").status_code == 404
    scrape = client.get("/metrics").text
    counted = set(re.findall(r'faceprint_http_requests_total\{[^}]*route="([^"]+)"', scrape))
    assert {"/openapi.json", "/docs", "/docs/static/{path}", "unmatched"} <= counted, counted
