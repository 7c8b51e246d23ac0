"""The web page's camera flows in headless Chromium with a fake camera, and Swagger UI at /docs.

The camera is a ``.y4m`` file made at test time (``scripts/web_console_screenshot.py``): the
Hamilton clip, then a second photo of Alex Lacamoire (in the clip he is a 25-pixel blurred face at
the piano that the quality gate skips in every frame). Lin-Manuel Miranda and Alex Lacamoire are
enrolled from their reference photos first, in a collection that keeps images, whose crops the
people list shows. Webcam mode must name both on the page, with a
live/spoof badge on each face; the liveness check runs its random challenge on the clip, which
was not recorded for it, and must end with a verdict and its reason. Neither page may request
anything outside the service's origin. Everything waits on page state, never on elapsed time.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))
sync_api = pytest.importorskip("playwright.sync_api")
from browser import CHROMIUM, FLAGS, needs_chromium
from service_load import ServerProcess
from web_console_screenshot import CAMERA_FLAGS, PEOPLE, fake_camera

pytestmark = needs_chromium
# What the page may say when a challenge ends (faceprint.pad.active and service.challenges).
VERDICT = re.compile(
    r"^(LIVE: every step passed \(.+\) and the passive check too\."
    r"|NOT VERIFIED: (step [12] \((blink|turn_left|turn_right|smile)\): (timeout: no (face seen|blink|turn_left|"
    r"turn_right|smile) within 5 s|wrong action: turn_(left|right) when asked to (blink|turn_left|turn_right|smile))"
    r"|no steady face to calibrate on within 5 s"
    r"|every step passed, but passive liveness failed \((print|screen|attack) suspected, .+\))\.)$")


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    with ServerProcess(tmp_path_factory.mktemp("console") / "data", profile="fast", workers=2) as srv:
        h = {"Authorization": f"Bearer {srv.admin_key}"}
        httpx.post(srv.url + "/v1/collections", json={"name": "stage", "keep_images": True},
                   headers=h).raise_for_status()
        for person in PEOPLE:
            photo = data_dir / "video" / f"{person}.png"
            r = httpx.post(f"{srv.url}/v1/collections/stage/persons/{person}/faces", headers=h, timeout=60,
                           files=[("images", (photo.name, photo.read_bytes(), "image/png"))])
            assert r.status_code == 201, r.text
        yield srv


@pytest.fixture(scope="module")
def page(server, tmp_path_factory, data_dir):
    camera = fake_camera(data_dir, tmp_path_factory.mktemp("camera") / "camera.y4m")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            *FLAGS, *CAMERA_FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_page()
        page.set_default_timeout(120_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.requested = requested
        yield page
        browser.close()


def test_webcam_names_the_enrolled_people_with_a_liveness_badge(server, page):
    page.goto(server.url + "/")
    page.get_by_label("API key").fill(server.admin_key)
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.locator("#threshold")).to_contain_text("Threshold in use")
    # The people list: the service's crop of each kept face (GET .../faces/{id}/thumbnail).
    for person in PEOPLE:
        thumb = page.get_by_role("img", name=f"Face 1 of {person}")
        sync_api.expect(thumb).to_be_visible()
        assert thumb.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalWidth <= 96")
    sync_api.expect(page.get_by_role("button", name="Check liveness")).to_be_disabled()
    start = page.get_by_role("button", name="Start camera")
    start.focus()
    page.keyboard.press("Enter")  # keyboard only
    sync_api.expect(page.locator("#camera-status")).to_have_text("Camera on: faces are identified a few times a second.")
    sync_api.expect(page.get_by_role("button", name="Stop camera")).to_be_focused()
    for person in PEOPLE:
        face = page.locator(f'#camera-results li[data-person="{person}"]')
        face.wait_for()
        assert face.get_attribute("data-liveness") in ("live", "spoof")
        assert re.match(rf"Face \d+: {person} · (LIVE|SPOOF suspected \((print|screen)\))$", face.inner_text())
    assert page.locator("#camera-overlay").evaluate("c => c.width") == 640


def test_liveness_challenge_in_the_browser_ends_with_a_reason(server, page):
    check = page.get_by_role("button", name="Check liveness")
    sync_api.expect(check).to_be_enabled()
    check.click()
    sync_api.expect(page.locator("#challenge-steps")).to_contain_text("Liveness check: 2 steps in random order. 1. ")
    verdict = page.locator("#challenge-verdict[data-outcome]")
    verdict.wait_for()
    text = verdict.inner_text()
    assert VERDICT.match(text), text
    assert verdict.get_attribute("data-outcome") == ("live" if text.startswith("LIVE") else "failed")
    sync_api.expect(check).to_be_enabled()  # back to identifying; another check may start
    page.get_by_role("button", name="Stop camera").click()
    sync_api.expect(page.locator("#camera-status")).to_have_text("Camera off.")
    sync_api.expect(page.locator("#camera-view")).to_be_hidden()


def test_swagger_ui_offline_and_no_request_leaves_the_origin(server, page):
    page.goto(server.url + "/docs")
    sync_api.expect(page.locator(".swagger-ui .info .title")).to_contain_text("faceprint")
    sync_api.expect(page.locator("#operations-liveness-start_challenge_v1_liveness_challenges_post")).to_be_visible()
    page.wait_for_load_state("networkidle")
    outside = [u for u in page.requested  # the page's own blob: and data: URLs are local too
               if not u.startswith((server.url + "/", f"blob:{server.url}/", "data:"))]
    assert not outside, outside
    assert any(u.endswith("/docs/static/swagger-ui-bundle.js") for u in page.requested)
