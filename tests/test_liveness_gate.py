"""``require_live``: a presentation attack is rejected before matching, with the reason, in the
engine, the CLI and the service. Uses the real Silent-Face samples (one live, one screen replay that the shipped model catches)."""

from __future__ import annotations

import json
import math

import pytest

from faceprint.cli import main


@pytest.fixture(scope="module")
def samples(data_dir):
    folder = data_dir / "antispoof" / "silent-face-samples"
    return {"live": folder / "image_T1.jpg", "attack": folder / "image_F2.jpg"}


def test_engine_verify_rejects_an_attack_before_matching(engine_fast, samples):
    plain = engine_fast.verify(samples["attack"], samples["live"])
    assert not math.isnan(plain.similarity) and plain.rejected is None and plain.liveness == ()
    gated = engine_fast.verify(samples["attack"], samples["live"], require_live=True)
    assert gated.rejected and gated.rejected.startswith("a: ") and "b:" not in gated.rejected
    assert not gated.is_match and math.isnan(gated.similarity)
    assert [c.is_live for c in gated.liveness] == [False, True]
    out = gated.to_dict()
    assert out["similarity"] is None and out["rejected"] == gated.rejected and len(out["liveness"]) == 2
    live = engine_fast.verify(samples["live"], samples["live"], require_live=True)
    assert live.rejected is None and live.is_match and live.similarity > 0.99


def test_engine_identify_marks_the_attack_and_searches_nothing_for_it(engine_fast, samples, tmp_path):
    gallery = tmp_path / "g.sqlite"
    engine_fast.enroll("subject", [samples["live"]], gallery)
    (attack,) = engine_fast.identify(samples["attack"], gallery, require_live=True)
    assert attack.rejected and attack.person is None and attack.candidates == []
    (ungated,) = engine_fast.identify(samples["attack"], gallery)
    assert ungated.rejected is None and ungated.candidates
    (live,) = engine_fast.identify(samples["live"], gallery, require_live=True)
    assert live.rejected is None and live.person == "subject" and live.liveness.is_live


def test_template_inputs_cannot_be_checked(engine_fast, samples):
    from faceprint.errors import UnsupportedInputError

    template = engine_fast.embed(samples["live"])
    with pytest.raises(UnsupportedInputError):
        engine_fast.verify(template, samples["live"], require_live=True)


def test_cli_require_live(samples, capsys):
    assert main(["verify", "--model", "fast", "--require-live", str(samples["attack"]), str(samples["live"])]) == 1
    assert "REJECTED before matching: a: " in capsys.readouterr().out
    assert main(["verify", "--model", "fast", "--require-live", "--json", str(samples["live"]),
                 str(samples["live"])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["is_match"] and out["rejected"] is None and all(x["is_live"] for x in out["liveness"])


def test_service_require_live(samples, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from faceprint.service.app import ServiceSettings, create_app

    app = create_app(ServiceSettings(tmp_path, profile="fast", workers=1, warm=False))
    key, _ = app.state.service.keys.create("admin", ["*"])
    h = {"X-API-Key": key}

    def image(name: str, field: str = "image") -> list:
        return [(field, (name, samples[name].read_bytes()))]

    with TestClient(app) as client:
        client.post("/v1/collections", json={"name": "door"}, headers=h)
        client.post("/v1/collections/door/persons/subject/faces", files=image("live", "images"), headers=h)
        gated = client.post("/v1/collections/door/identify?require_live=true", files=image("attack"), headers=h)
        face = gated.json()["faces"][0]
        assert face["rejected"] and face["person"] is None and face["liveness"]["is_live"] is False
        ok = client.post("/v1/collections/door/identify?require_live=true", files=image("live"), headers=h)
        assert ok.json()["faces"][0]["person"] == "subject"
        v = client.post("/v1/collections/door/persons/subject/verify?require_live=true", files=image("attack"),
                        headers=h).json()
        assert v["rejected"] and v["similarity"] is None and not v["is_match"]
        pair = client.post("/v1/verify?require_live=true", files=image("attack", "a") + image("live", "b"),
                           headers=h).json()
        assert pair["rejected"].startswith("a: ") and pair["similarity"] is None
