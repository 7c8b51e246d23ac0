"""The service with its state in PostgreSQL (``--database``): two apps on one database act as two replicas.

Each app has its own connections, galleries and inference pool, as a separate ``faceprint serve``
process would; what one acknowledges, the other must see at once. (Separate processes, killed
mid-load, are in ``tests/test_service_load.py``.) Also here: ``/metrics`` scraped and parsed,
the JSON access log, the audit chain both replicas append to, and the CLI on the database.
"""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from faceprint.privacy.crypto import GalleryKey
from faceprint.service.app import ServiceSettings, create_app


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload(field: str, *paths) -> list:
    return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


@pytest.fixture(scope="module")
def replicas(pg_url, tmp_path_factory, data_dir):
    """Two service apps ("replicas") on one database, encrypting with one key, and an admin key."""
    key = GalleryKey.generate()
    apps = [create_app(ServiceSettings(tmp_path_factory.mktemp(f"replica{i}"), profile="fast", workers=1, queue=8,
                                       database=pg_url, key=key)) for i in range(2)]
    admin, _ = apps[0].state.service.keys.create("admin", ["*"], label="test admin")
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        yield a, b, admin


@pytest.fixture(scope="module")
def files(data_dir):
    knn = data_dir / "knn-small"
    return {"obama": sorted((knn / "train/obama").iterdir())[:2], "biden": sorted((knn / "train/biden").iterdir())[:1],
            "group": knn / "test/obama_and_biden.jpg"}


def new_collection(client, admin, **settings) -> str:
    name = "c" + uuid.uuid4().hex[:10]
    r = client.post("/v1/collections", json={"name": name, "profile": "fast", **settings}, headers=auth(admin))
    assert r.status_code == 201, r.text
    return name


def test_enrolment_on_one_replica_is_identified_on_the_other(replicas, files):
    a, b, admin = replicas
    name = new_collection(a, admin, keep_images=True)
    assert name in [c["name"] for c in b.get("/v1/collections", headers=auth(admin)).json()]
    r = a.post(f"/v1/collections/{name}/persons/obama/faces", files=upload("images", *files["obama"]),
               headers=auth(admin))
    assert r.status_code == 201, r.text
    added = r.json()["faces_added"]
    assert len(added) == 2
    r = b.post(f"/v1/collections/{name}/identify", files=upload("image", files["group"]), headers=auth(admin))
    assert r.status_code == 200, r.text
    assert [f["person"] for f in r.json()["faces"]][:2] == ["obama", None]
    person = b.get(f"/v1/collections/{name}/persons/obama", headers=auth(admin)).json()
    assert [f["id"] for f in person["faces"]] == added and all(f["has_image"] for f in person["faces"])
    image = b.get(f"/v1/collections/{name}/faces/{added[0]}/image", headers=auth(admin))
    assert image.status_code == 200 and image.content == files["obama"][0].read_bytes()
    assert b.get(f"/v1/collections/{name}", headers=auth(admin)).json()["faces"] == 2
    # the same face under another name, through the other replica: one duplicate check for both
    r = b.post(f"/v1/collections/{name}/persons/barack/faces", files=upload("images", files["obama"][0]),
               headers=auth(admin))
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_identity"


def test_fair_collection_on_the_database(replicas, data_dir):
    """A fair collection enrols and identifies a real face with its own threshold, and the other replica sees it fair."""
    lfw = data_dir / "lfw-view1" / "images"
    powell = sorted((lfw / "Colin_Powell").iterdir())
    a, b, admin = replicas
    name = new_collection(a, admin, fair=True)
    made = b.get(f"/v1/collections/{name}", headers=auth(admin)).json()
    plain = b.get(f"/v1/collections/{new_collection(b, admin)}", headers=auth(admin)).json()
    assert made["fair"] and made["model"] == plain["model"] + "+fair" and not plain["fair"]
    assert made["threshold"] != plain["threshold"]  # the normaliser's own threshold at the same FMR
    assert [c["fair"] for c in b.get("/v1/collections", headers=auth(admin)).json() if c["name"] == name] == [True]
    r = a.post(f"/v1/collections/{name}/persons/powell/faces", files=upload("images", *powell[:2]), headers=auth(admin))
    assert r.status_code == 201, r.text
    for probe, person in ((powell[2], "powell"), (sorted((lfw / "Tony_Blair").iterdir())[0], None)):
        r = b.post(f"/v1/collections/{name}/identify", files=upload("image", probe), headers=auth(admin))
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model"] == made["model"] and out["threshold"] == pytest.approx(made["threshold"], abs=1e-4)
        assert out["faces"][0]["person"] == person, out


def test_stored_columns_are_ciphertext(replicas, files, pg_url):
    import psycopg

    a, _, admin = replicas
    name = new_collection(a, admin, keep_images=True)
    assert a.post(f"/v1/collections/{name}/persons/biden/faces", files=upload("images", *files["biden"]),
                  headers=auth(admin)).status_code == 201
    photo = files["biden"][0].read_bytes()
    with psycopg.connect(pg_url) as conn:
        schema = conn.execute("SELECT gallery FROM faceprint_service.collections WHERE name = %s", (name,)).fetchone()[0]
        embedding, template = conn.execute(f'SELECT embedding, template FROM "{schema}".faces').fetchone()
        image = bytes(conn.execute(f'SELECT image FROM "{schema}".face_images').fetchone()[0])
    assert embedding is None and template is not None  # a key and no transform: nothing searchable in clear
    assert photo[:256] not in image and len(image) > len(photo)


def test_revoked_key_is_refused_by_every_replica(replicas):
    a, b, admin = replicas
    r = b.post("/v1/keys", json={"role": "reader", "collections": ["*"], "label": "door"}, headers=auth(admin))
    assert r.status_code == 201
    reader, key_id = r.json()["key"], r.json()["id"]
    assert a.get("/v1/collections", headers=auth(reader)).status_code == 200
    assert b.delete(f"/v1/keys/{key_id}", headers=auth(admin)).status_code == 204
    for client in (a, b):
        assert client.get("/v1/collections", headers=auth(reader)).status_code == 401


def test_collection_deleted_and_made_again_elsewhere(replicas, files):
    a, b, admin = replicas
    name = new_collection(a, admin)
    assert a.post(f"/v1/collections/{name}/persons/biden/faces", files=upload("images", *files["biden"]),
                  headers=auth(admin)).status_code == 201
    assert b.get(f"/v1/collections/{name}", headers=auth(admin)).json()["persons"] == 1  # b opens its gallery
    assert a.delete(f"/v1/collections/{name}", headers=auth(admin)).status_code == 204
    assert b.get(f"/v1/collections/{name}", headers=auth(admin)).status_code == 404
    assert a.post("/v1/collections", json={"name": name, "profile": "fast"}, headers=auth(admin)).status_code == 201
    assert b.get(f"/v1/collections/{name}", headers=auth(admin)).json()["persons"] == 0  # not the old gallery
    assert b.post("/v1/collections", json={"name": name}, headers=auth(admin)).status_code == 409


def test_metrics_scrape(replicas, files):
    a, _, admin = replicas
    name = new_collection(a, admin)
    assert a.post(f"/v1/collections/{name}/persons/obama/faces", files=upload("images", *files["obama"]),
                  headers=auth(admin)).status_code == 201
    assert a.post(f"/v1/collections/{name}/identify", files=upload("image", files["group"]),
                  headers=auth(admin)).status_code == 200
    assert a.get("/v1/collections/nope-missing", headers=auth(admin)).status_code == 404
    r = a.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = {(s.labels["route"], s.labels["status"]): s.value for s in families["faceprint_http_requests"].samples
                if s.name == "faceprint_http_requests_total"}
    assert requests[("/v1/collections/{collection}/identify", "200")] >= 1
    assert requests[("/v1/collections/{collection}", "404")] >= 1
    assert not any(route.startswith("/v1/collections/c") for route, _ in requests)  # templates, not raw paths
    buckets = [s for s in families["faceprint_http_request_duration_seconds"].samples
               if s.name.endswith("_count") and s.labels["route"] == "/v1/collections/{collection}/identify"]
    assert buckets and buckets[0].value >= 1
    templates = {s.labels["collection"]: s.value for s in families["faceprint_templates"].samples}
    persons = {s.labels["collection"]: s.value for s in families["faceprint_persons"].samples}
    assert templates[name] == 2 and persons[name] == 1
    assert families["faceprint_inference_queue_depth"].samples[0].value == 0  # nothing in flight now
    assert families["faceprint_inference_workers"].samples[0].value == 1


def test_json_access_log(replicas):
    from faceprint.service.observability import configure_json_logs

    a, _, admin = replicas
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_json_logs(logging.INFO, stream)
        assert a.get("/v1/collections", headers=auth(admin)).status_code == 200
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [r for r in records if r["logger"] == "faceprint.service.access"]
    assert access and access[-1]["route"] == "/v1/collections" and access[-1]["status"] == 200
    assert access[-1]["key_id"] and access[-1]["level"] == "INFO" and "time" in access[-1]


def test_one_audit_chain_for_both_replicas(replicas, pg_url, capsys):
    from faceprint.cli import main

    a, b, admin = replicas
    for client in (a, b, a):
        client.get("/v1/collections", headers=auth(admin))
    assert main(["audit", "verify", pg_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["records"] >= 3
    assert main(["audit", "export", pg_url]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in lines] == list(range(len(lines)))
    assert lines[-1]["details"]["route"] == "list_collections" and lines[-1]["actor"].startswith("key:")


def test_apikey_cli_on_the_database(replicas, pg_url, tmp_path, capsys):
    from faceprint.cli import main

    a, _, _ = replicas
    assert main(["apikey", "create", "--data", str(tmp_path), "--database", pg_url, "--role", "reader",
                 "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert a.get("/v1/collections", headers=auth(made["key"])).status_code == 200
    assert main(["apikey", "revoke", "--data", str(tmp_path), "--database", pg_url, "--id", made["id"]]) == 0
    assert a.get("/v1/collections", headers=auth(made["key"])).status_code == 401
    assert main(["serve", "--database", pg_url + "&gallery=x", "--data", str(tmp_path)]) == 2
    assert "drop the gallery= parameter" in capsys.readouterr().err


def test_failure_counts_are_shared_by_replicas(pg_url):
    """The lockout's failed-verification store: what one replica records, another counts."""
    from faceprint.service.database import PostgresFailureStore

    scope = "key\x1f" + uuid.uuid4().hex
    one, two = PostgresFailureStore(pg_url), PostgresFailureStore(pg_url)
    try:
        one.add([scope, scope + "-person"], 100.0)
        two.add([scope], 105.0)
        assert one.times(scope, since=0) == two.times(scope, since=0) == [100.0, 105.0]
        assert two.times(scope, since=100.0) == [105.0]  # the expired one is gone for both
        assert one.times(scope, since=0) == [105.0]
        two.clear(scope)
        assert one.times(scope, since=0) == [] and one.times(scope + "-person", since=0) == [100.0]
    finally:
        one.close()
        two.close()


def test_challenge_table_made_before_its_migration_is_kept(pg_url, monkeypatch):
    """A database at schema version 2 whose liveness_challenges table the store made itself migrates to 3, rows kept."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from faceprint.service import challenges as active
    from faceprint.service import database

    name = "old_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    with monkeypatch.context() as m:  # the service tables as faceprint before the step made them
        m.setattr(database, "SCHEMA_VERSION", 2)
        m.setattr(database, "MIGRATIONS", database.MIGRATIONS[:2])
        database.migrate(url)
    record = active.new_record("key1", n_steps=2)
    with psycopg.connect(url, autocommit=True) as conn:  # the table and a row, as the store made them then
        conn.execute("CREATE TABLE IF NOT EXISTS faceprint_service.liveness_challenges (id text PRIMARY KEY, "
                     "started_at double precision NOT NULL, record jsonb NOT NULL)")
        conn.execute("INSERT INTO faceprint_service.liveness_challenges VALUES (%s, %s, %s)",
                     (record.id, record.started_at, json.dumps(record.to_dict())))
    store = active.PostgresChallengeStore(url)  # migrates to version 3
    try:
        assert store.get(record.id) == record
        database.migrate(url)  # once at the newest version, again is nothing
        with psycopg.connect(url) as conn:
            version = conn.execute("SELECT value FROM faceprint_service.meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(database.SCHEMA_VERSION),) and database.SCHEMA_VERSION == 3
    finally:
        store.close()


def test_verify_lockout_counts_across_replicas(replicas, files):
    """Failures spread over both replicas meet one count: the 6th attempt (limit 5 per key) is refused by either."""
    a, b, admin = replicas
    name = new_collection(a, admin)
    assert a.post(f"/v1/collections/{name}/persons/obama/faces", files=upload("images", *files["obama"]),
                  headers=auth(admin)).status_code == 201
    reader = a.post("/v1/keys", json={"role": "reader", "collections": [name]}, headers=auth(admin)).json()["key"]
    for client in (a, b, a, b, a):
        r = client.post(f"/v1/collections/{name}/persons/obama/verify", files=upload("image", files["biden"][0]),
                        headers=auth(reader))
        assert r.status_code == 200 and r.json()["is_match"] is False, r.text
    for client in (b, a):
        r = client.post(f"/v1/collections/{name}/persons/obama/verify", files=upload("image", files["biden"][0]),
                        headers=auth(reader))
        assert r.status_code == 429 and r.json()["error"]["code"] == "verify_locked", r.text
        assert int(r.headers["Retry-After"]) > 0


def test_replica_reconnects_after_the_database_drops_it(replicas, files, pg_url):
    """A PostgreSQL restart or failover drops every connection: requests after the first that finds out succeed."""
    import psycopg

    a, _, admin = replicas
    name = new_collection(a, admin)
    assert a.post(f"/v1/collections/{name}/persons/biden/faces", files=upload("images", *files["biden"]),
                  headers=auth(admin)).status_code == 201
    with psycopg.connect(pg_url, autocommit=True) as conn:
        dropped = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                               "AND backend_type = 'client backend'").fetchone()[0]
    assert dropped > 0
    answers = [a.get(f"/v1/collections/{name}", headers=auth(admin)) for _ in range(4)]  # 3 connections to find out
    assert answers[-1].status_code == 200, [r.text for r in answers]
    assert all(r.status_code == 200 or r.json()["error"]["code"] == "database_error" for r in answers)
    r = a.post(f"/v1/collections/{name}/identify", files=upload("image", files["group"]), headers=auth(admin))
    assert r.status_code == 200 and "biden" in [f["person"] for f in r.json()["faces"]], r.text
