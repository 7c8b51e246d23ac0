"""The service routes behind the web console: active liveness challenges, identify with liveness, thumbnails.

The challenge runs on the service's clock; here that clock is a counter the test advances by one
frame time (1/12 s) per frame, so the outcome never depends on how fast this machine is. The pass
path is the one ``tests/test_active_liveness.py`` proves on its own: real LFW photos of one man
looking ahead, turned to his left, ahead, turned to his right (each frame a real pose), posted as
camera frames. The service draws the steps at random (the replay guard); for the test, the
challenge's order is set to the one the photos act out, through the store, as any
``ChallengeStore`` holds it.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from faceprint.service import challenges as active
from faceprint.service.app import ServiceSettings, create_app

TRUTH = json.loads((Path(__file__).parent / "data" / "active_liveness_truth.json").read_text())
FRAME_S = 1 / 12


class Clock:
    """The service's clock in these tests: seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def service(tmp_path_factory, data_dir):
    app = create_app(ServiceSettings(tmp_path_factory.mktemp("console-api"), profile="fast", workers=1, queue=8))
    keys = app.state.service.keys
    admin, _ = keys.create("admin", ["*"])
    other, _ = keys.create("reader", ["*"])
    clock = Clock()
    app.state.service.challenges.clock = clock
    with TestClient(app) as client:
        yield client, app, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {other}"}, clock


def _frame(path: Path, field: str = "image") -> list:
    return [(field, (path.name, path.read_bytes(), "image/jpeg"))]


def _post_frames(service, challenge_id: str, segments) -> dict:
    """Post each (photo, seconds) segment as frames 1/12 s apart; the last answer."""
    client, _, h, _, clock = service
    answer = None
    for photo, seconds in segments:
        for _ in range(round(seconds / FRAME_S)):
            clock.now += FRAME_S
            r = client.post(f"/v1/liveness/challenges/{challenge_id}/frames", files=_frame(photo), headers=h)
            assert r.status_code == 200, r.text
            answer = r.json()
            if answer["done"]:
                return answer
    return answer


def _start(service, steps: list[str] | None = None, **body) -> dict:
    client, app, h, _, _ = service
    r = client.post("/v1/liveness/challenges", json=body, headers=h)
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["phase"] == "calibrating" and started["instruction"] == "Look straight at the camera"
    if steps is not None:
        app.state.service.challenges.update(started["id"], lambda record: setattr(record, "steps", steps))
    return started


@pytest.fixture(scope="module")
def turns(data_dir):
    images = data_dir / "lfw-view1" / "images"
    frontal, left, right = (images / TRUTH["lfw_yaw"][g][0] for g in ("frontal", "subject_left", "subject_right"))
    return [(frontal, 1.0), (left, 0.4), (frontal, 0.6), (right, 0.4), (frontal, 0.6)]


def test_challenge_passes_when_the_frames_do_what_it_asks(service, turns):
    client, app, h, _, _ = service
    started = _start(service, ["turn_left", "turn_right"])
    assert len(started["steps"]) == 2 and len(set(started["steps"])) == 2  # drawn at random, no repeats
    end = _post_frames(service, started["id"], turns)
    assert end["done"] and end["phase"] == "passed", end
    result = end["result"]
    assert result["passed"] and result["challenge"] == ["turn_left", "turn_right"]
    assert result["steps"][0]["value"] > 0.35 and result["steps"][1]["value"] < -0.35
    assert result["passive"]["frames"] == result["face_frames"] > 0
    assert result["live"] is True and result["passive"]["is_live"] is True and result["reason"] is None
    # The record is plain data: a copy rebuilt from JSON (what a shared store holds) says the same.
    record = app.state.service.challenges.get(started["id"])
    copy = active.ChallengeRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert active.describe(copy) == client.get(f"/v1/liveness/challenges/{started['id']}", headers=h).json() == end
    # A frame after the end changes nothing.
    more = client.post(f"/v1/liveness/challenges/{started['id']}/frames", files=_frame(turns[0][0]), headers=h).json()
    assert more == end


def test_a_greyscale_camera_passes_the_steps_but_is_not_judged(service, turns, tmp_path):
    """The same turns in greyscale (an infrared or black-and-white camera): the steps pass, the passive check does
    not judge the frames, so the challenge is not live and says why."""
    grey = []
    for photo, seconds in turns:
        out = tmp_path / f"grey-{photo.name}"
        if not out.exists():
            Image.open(photo).convert("L").save(out, "JPEG", quality=95)
        grey.append((out, seconds))
    end = _post_frames(service, _start(service, ["turn_left", "turn_right"])["id"], grey)
    result = end["result"]
    assert result["passed"] and result["live"] is False
    assert result["passive"]["frames"] > 0 and result["passive"]["not_judged_frames"] == result["passive"]["frames"]
    assert "could not judge the frames: the face is greyscale" in result["reason"]


def test_the_same_frames_fail_another_order_with_the_reason(service, turns):
    started = _start(service, ["turn_right", "turn_left"])
    end = _post_frames(service, started["id"], turns)
    assert end["phase"] == "failed" and not end["result"]["live"]
    assert end["result"]["reason"] == "step 1 (turn_right): wrong action: turn_left when asked to turn_right"


def test_a_still_face_times_out_and_no_face_is_said(service, turns, tmp_path):
    frontal = turns[0][0]
    started = _start(service, ["blink"], step_timeout_s=1, n_steps=1)
    assert started["step_timeout_s"] == 1
    wall = tmp_path / "wall.jpg"
    Image.fromarray(np.full((240, 320, 3), 180, np.uint8)).save(wall)
    first = _post_frames(service, started["id"], [(wall, FRAME_S)])
    assert first["face_found"] is False and first["box"] is None and not first["done"]
    end = _post_frames(service, started["id"], [(frontal, 3.0)])
    assert end["result"]["reason"] == "step 1 (blink): timeout: no blink within 1 s"
    assert end["result"]["steps"][0]["action"] == "blink" and not end["result"]["steps"][0]["passed"]


def test_challenges_belong_to_their_key_expire_and_refuse_bad_requests(service, turns):
    client, _, h, other, clock = service
    started = _start(service)
    path = f"/v1/liveness/challenges/{started['id']}"
    for answer in (client.get(path, headers=other), client.post(path + "/frames", files=_frame(turns[0][0]),
                                                                headers=other)):
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "challenge_not_found"
    assert client.get(path).status_code == 401
    assert client.post("/v1/liveness/challenges", json={"n_steps": 5}, headers=h).status_code == 422
    assert client.post(path + "/frames", json={"image": "not base64!"}, headers=h).status_code == 400
    clock.now += active.CHALLENGE_TTL_S + 1
    gone = client.get(path, headers=h)
    assert gone.status_code == 404 and "start a new one" in gone.json()["error"]["message"]


def test_identify_with_liveness_and_kept_face_thumbnails(service, data_dir):
    client, _, h, other, _ = service
    knn = data_dir / "knn-small"
    assert client.post("/v1/collections", json={"name": "kept", "keep_images": True}, headers=h).status_code == 201
    photos = [knn / "train/obama/obama.jpg", knn / "train/obama/obama2.jpg"]
    enrolled = client.post("/v1/collections/kept/persons/obama/faces", headers=h,
                           files=[f for p in photos for f in _frame(p, "images")]).json()
    group = knn / "test/obama_and_biden.jpg"
    plain = client.post("/v1/collections/kept/identify", files=_frame(group), headers=h).json()
    assert all(f["liveness"] is None for f in plain["faces"])
    with_live = client.post("/v1/collections/kept/identify?liveness=true", files=_frame(group), headers=h).json()
    assert [f["person"] for f in with_live["faces"]] == [f["person"] for f in plain["faces"]]
    assert with_live["faces"][0]["person"] == "obama"  # named whatever its liveness says
    assert all(0 <= f["liveness"]["score"] <= 1 for f in with_live["faces"])  # skipped faces too
    assert any(f["skipped"] for f in with_live["faces"])

    for face_id in enrolled["faces_added"]:
        r = client.get(f"/v1/collections/kept/persons/obama/faces/{face_id}/thumbnail", headers=h)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        thumb = Image.open(io.BytesIO(r.content))
        assert max(thumb.size) == 96
    # The service's crop of the kept image is the crop returned at enrolment (same box, same decoding).
    ours = np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), np.float32)
    returned = np.asarray(Image.open(io.BytesIO(base64.b64decode(enrolled["thumbnails"][-1].split(",", 1)[1])))
                          .convert("L"), np.float32)
    assert ours.shape == returned.shape and np.abs(ours - returned).mean() < 3
    missing = client.get(f"/v1/collections/kept/persons/obama/faces/{face_id + 99}/thumbnail", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "image_not_stored"
    assert client.post("/v1/collections", json={"name": "plain"}, headers=h).status_code == 201
    bare = client.post("/v1/collections/plain/persons/obama/faces", headers=h, files=_frame(photos[0], "images"))
    no_image = client.get(f"/v1/collections/plain/persons/obama/faces/{bare.json()['faces_added'][0]}/thumbnail",
                          headers=h)
    assert no_image.status_code == 404 and "keep_images" in no_image.json()["error"]["message"]


def test_postgres_store_shares_challenges_between_replicas(pg_url):
    """Two stores on one database stand for two replicas: a challenge started on one takes frames on both."""
    from concurrent.futures import ThreadPoolExecutor

    clock = Clock()
    a = active.PostgresChallengeStore(pg_url, clock=clock)
    b = active.PostgresChallengeStore(pg_url, clock=clock)
    record = active.new_record("key1", n_steps=2, now=clock())
    a.add(record)
    assert b.get(record.id) == record

    def post(n: int) -> None:  # a frame without a face, as a replica records it
        b.update(record.id, lambda r: active.add_frame(r, active.FrameRecord(time_s=n / 12)))

    with ThreadPoolExecutor(4) as pool:  # concurrent frames on "replica" b: none is lost
        list(pool.map(post, range(40)))
    stored = a.get(record.id)
    assert len(stored.frames) == 40
    times = [f.time_s for f in stored.frames]
    assert times == sorted(times)  # arrival order, never backwards
    assert active.describe(stored)["phase"] == "calibrating"
    clock.now += active.CHALLENGE_TTL_S + 1
    assert a.get(record.id) is None and b.get(record.id) is None
    with pytest.raises(active.ChallengeNotFoundError):
        b.update(record.id, lambda r: None)
    a.close()
    b.close()


def test_replicas_on_one_database_share_a_challenge(pg_url, tmp_path):
    apps = [create_app(ServiceSettings(tmp_path / f"replica{i}", database=pg_url, warm=False, workers=1))
            for i in range(2)]
    assert all(isinstance(app.state.service.challenges, active.PostgresChallengeStore) for app in apps)
    full, _ = apps[0].state.service.keys.create("reader", ["*"])
    h = {"Authorization": f"Bearer {full}"}
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        started = one.post("/v1/liveness/challenges", headers=h).json()
        seen = two.get(f"/v1/liveness/challenges/{started['id']}", headers=h)
        assert seen.status_code == 200 and seen.json()["steps"] == started["steps"]
