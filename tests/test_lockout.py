"""Failed-verification lockout: counts per key and person, the 429 with Retry-After, the audit record; a fake clock."""

from __future__ import annotations

import json

import pytest

from faceprint.service.lockout import (LockoutPolicy, MemoryFailureStore, SQLiteFailureStore, VerifyLockedError,
                                       VerifyLockout)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_lockout_counts_failures_in_a_sliding_window(store, tmp_path):
    clock = Clock()
    failures = MemoryFailureStore() if store == "memory" else SQLiteFailureStore(tmp_path / "lockout.sqlite")
    lockout = VerifyLockout(LockoutPolicy(per_key=3, per_person=100, window_s=600), failures, clock=clock)
    for _ in range(3):
        lockout.check("k1", "team", "ada")
        lockout.record("k1", "team", "ada", matched=False)
        clock.now += 10
    with pytest.raises(VerifyLockedError) as caught:
        lockout.check("k1", "team", "ada")
    # the first failure (30 s ago) leaves the 600 s window in 570 s
    assert caught.value.retry_after == 570
    assert caught.value.code == "verify_locked"
    lockout.check("k2", "team", "ada")  # another key has its own count
    lockout.check("k1", "team", "bob")  # and another person
    lockout.check("k1", "other", "ada")  # and the same name in another collection
    clock.now += 569
    with pytest.raises(VerifyLockedError):
        lockout.check("k1", "team", "ada")
    clock.now += 1
    lockout.check("k1", "team", "ada")  # the oldest failure left the window


def test_success_clears_the_keys_count_but_not_the_count_over_all_keys():
    clock = Clock()
    lockout = VerifyLockout(LockoutPolicy(per_key=2, per_person=3, window_s=60), clock=clock)
    lockout.record("k1", "team", "ada", matched=False)
    lockout.record("k1", "team", "ada", matched=True)
    lockout.record("k1", "team", "ada", matched=False)
    lockout.check("k1", "team", "ada")  # 1 failure since the success
    lockout.record("k2", "team", "ada", matched=False)  # three failures over all keys
    with pytest.raises(VerifyLockedError, match="all keys"):
        lockout.check("k3", "team", "ada")  # a fresh key is refused too: rotating keys does not help


def test_limits_of_zero_turn_the_lockout_off():
    lockout = VerifyLockout(LockoutPolicy(per_key=0, per_person=0), clock=Clock())
    for _ in range(50):
        lockout.record("k", "c", "p", matched=False)
    lockout.check("k", "c", "p")
    with pytest.raises(ValueError):
        LockoutPolicy(window_s=0)


# ------------------------------------------------------------------------------- through the service


@pytest.fixture(scope="module")
def locked_service(tmp_path_factory, data_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from faceprint.service.app import ServiceSettings, create_app

    data = tmp_path_factory.mktemp("lockout")
    settings = ServiceSettings(data, profile="fast", workers=1, queue=4, warm=False, audit_log=data / "audit.log",
                               lockout=LockoutPolicy(per_key=3, per_person=10, window_s=900))
    app = create_app(settings)
    admin, _ = app.state.service.keys.create("admin", ["*"])
    clock = Clock()
    app.state.service.lockout.clock = clock
    with TestClient(app) as client:
        yield client, admin, clock, data / "audit.log"


def test_verify_endpoint_answers_429_with_retry_after_and_audits_it(locked_service, data_dir):
    client, admin, clock, audit = locked_service
    h = {"Authorization": f"Bearer {admin}"}
    knn = data_dir / "knn-small"
    assert client.post("/v1/collections", json={"name": "door"}, headers=h).status_code == 201
    enrol = [("images", ("obama.jpg", (knn / "train/obama/obama.jpg").read_bytes(), "image/jpeg"))]
    assert client.post("/v1/collections/door/persons/obama/faces", files=enrol, headers=h).status_code == 201
    stranger = [("image", ("biden.jpg", (knn / "train/biden/biden.jpg").read_bytes(), "image/jpeg"))]
    genuine = [("image", ("obama1.jpg", (knn / "test/obama1.jpg").read_bytes(), "image/jpeg"))]
    for _ in range(3):  # three look-alike guesses fail
        r = client.post("/v1/collections/door/persons/obama/verify", files=stranger, headers=h)
        assert r.status_code == 200 and r.json()["is_match"] is False
        clock.now += 60
    r = client.post("/v1/collections/door/persons/obama/verify", files=genuine, headers=h)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "verify_locked"
    assert r.headers["Retry-After"] == str(900 - 180)  # the first failure leaves the window then
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    locked = [x for x in records if x.get("details", {}).get("locked_out")]
    assert len(locked) == 1 and locked[0]["outcome"] == "denied" and locked[0]["subject"] == "obama"
    clock.now += 900 - 180
    r = client.post("/v1/collections/door/persons/obama/verify", files=genuine, headers=h)
    assert r.status_code == 200 and r.json()["is_match"] is True
