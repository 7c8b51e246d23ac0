"""The web page, end to end in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Try to enrol before entering a key (the page asks for one), enrol one person from their photos and
another from a group photo (the page offers the faces to choose from and shows the crop it
enrolled), identify the group photo and read the names and the skipped face off the page, delete
one person and check they are gone from the list and come out unknown, and upload a photo without
a face (the error names the file). ``.ci/run`` installs the ``chromium`` package; nothing is
downloaded at test time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sync_api = pytest.importorskip("playwright.sync_api")
from browser import CHROMIUM, FLAGS, needs_chromium
from service_load import ServerProcess

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory, data_dir):
    with ServerProcess(tmp_path_factory.mktemp("web") / "data", profile="fast", workers=2) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _png(path: Path, width: int = 160, height: int = 120) -> Path:
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(path)
    return path


def test_enrol_identify_delete_in_the_browser(server, page, data_dir, tmp_path):
    knn = data_dir / "knn-small"
    group = knn / "test" / "obama_and_biden.jpg"
    page.goto(server.url + "/")
    page.evaluate("sessionStorage.clear()")
    page.reload()
    assert page.title() == "faceprint"
    page.locator("#enrol-name").fill("obama")
    page.locator("#enrol-files").set_input_files(str(knn / "train" / "obama" / "obama.jpg"))
    page.get_by_role("button", name="Enrol").click()
    sync_api.expect(page.locator("#status")).to_contain_text("enter an API key first")

    page.get_by_label("API key").fill(server.admin_key)
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.locator("#status")).to_have_text("Key accepted.")

    page.locator("summary").click()
    page.get_by_label("Name", exact=True).first.fill("friends")
    page.get_by_role("button", name="Create").click()
    sync_api.expect(page.locator("#threshold")).to_contain_text("Threshold in use: 0.3586")

    page.locator("#enrol-name").fill("obama")
    page.locator("#enrol-files").set_input_files([str(p) for p in sorted((knn / "train" / "obama").iterdir())])
    page.get_by_role("button", name="Enrol").click()
    sync_api.expect(page.locator("#status")).to_have_text("Enrolled obama: 2 face(s) added, 2 in all.")
    sync_api.expect(page.locator("#enrolled img")).to_have_count(2)

    # Biden from the group photo: the service refuses to guess, the page offers both usable faces.
    page.locator("#enrol-name").fill("biden")
    page.locator("#enrol-files").set_input_files(str(group))
    page.get_by_role("button", name="Enrol").click()
    sync_api.expect(page.locator("#face-picker")).to_be_visible()
    sync_api.expect(page.locator("#picker-prompt")).to_contain_text("obama_and_biden.jpg shows 2 faces")
    choices = page.locator("#picker-faces .face-choice")
    sync_api.expect(choices).to_have_count(2)
    assert choices.nth(0).get_attribute("data-index") == "0"  # /v1/detect order: Obama (largest), Biden
    choices.nth(1).click()
    sync_api.expect(page.locator("#status")).to_have_text("Enrolled biden: 1 face(s) added, 1 in all.")
    sync_api.expect(page.locator("#face-picker")).to_be_hidden()
    thumb = page.locator("#enrolled img")
    sync_api.expect(thumb).to_have_count(1)
    assert thumb.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0
    sync_api.expect(page.locator("#people tr")).to_have_count(2)
    sync_api.expect(page.locator("#people img")).to_have_count(3)  # each enrolled face in the list: 2 + 1

    page.locator("#identify-file").set_input_files(str(group))
    page.get_by_role("button", name="Identify").click()
    sync_api.expect(page.locator("#status")).to_have_text(
        "3 face(s): 2 known, 0 unknown, 1 skipped (too poor to search).")
    texts = page.locator("#identify-results li").all_inner_texts()
    assert texts[0].startswith("Face 1: obama (") and texts[1].startswith("Face 2: biden (")  # the picked face
    assert texts[2].startswith("Face 3: skipped, not searched (low quality (profile, ")
    badges = page.locator("#identify-results li").evaluate_all("items => items.map(li => li.dataset.liveness)")
    assert set(badges) <= {"live", "spoof"} and len(badges) == 3  # POST /v1/liveness: a badge for every face
    assert all("passive liveness: " in t for t in texts)
    sync_api.expect(page.locator("#result-figure")).to_be_visible()
    page.locator("#result-canvas").screenshot(path=str(tmp_path / "identified.png"))

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete obama").click()
    sync_api.expect(page.locator("#status")).to_have_text("Deleted obama (2 faces).")
    sync_api.expect(page.locator("#people tr")).to_have_count(1)
    sync_api.expect(page.locator("#people")).not_to_contain_text("obama")

    page.get_by_role("button", name="Identify").click()
    sync_api.expect(page.locator("#status")).to_have_text(
        "3 face(s): 1 known, 1 unknown, 1 skipped (too poor to search).")
    sync_api.expect(page.locator("#identify-results")).to_contain_text("unknown")

    page.locator("#enrol-name").fill("nobody")
    page.locator("#enrol-files").set_input_files(str(_png(tmp_path / "empty-wall.png")))
    page.get_by_role("button", name="Enrol").click()
    status = page.locator("#status")  # the file's name, what went wrong, what to give instead, the code
    sync_api.expect(status).to_contain_text("empty-wall.png: no face found; give a photo")
    sync_api.expect(status).to_contain_text("(no_face)")


def test_fair_collection_from_the_keyboard(server, page):
    """Create a fair collection with the keyboard only; the list says "fair" with its own threshold."""
    page.goto(server.url + "/")
    page.evaluate("sessionStorage.clear()")
    page.get_by_label("API key").fill(server.admin_key)
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#status")).to_have_text("Key accepted.")
    page.locator("summary").focus()
    page.keyboard.press("Enter")  # opens "New collection"
    page.keyboard.press("Tab")
    page.keyboard.type("fairset")
    page.keyboard.press("Tab")  # keep uploaded images
    page.keyboard.press("Tab")  # fair scores
    sync_api.expect(page.get_by_label("fair scores")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Create
    sync_api.expect(page.locator("#status")).to_have_text("Created collection fairset (fair scores).")
    chosen = page.locator("#collection option:checked")
    sync_api.expect(chosen).to_have_text("fairset (fair, threshold 0.4794)")  # FSN's own, not 0.3586
    assert [t for t in page.locator("#collection option").all_inner_texts() if "fair" in t] == [chosen.inner_text()]
    sync_api.expect(page.locator("#threshold")).to_contain_text("Threshold in use: 0.4794 fair-normalised score")
    sync_api.expect(page.locator("#threshold")).to_contain_text("+fair")


def test_wrong_key_is_refused_on_the_page(server, page):
    page.goto(server.url + "/")
    page.evaluate("sessionStorage.clear()")
    page.get_by_label("API key").fill("fp_000000000000_wrong")
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.locator("#status")).to_contain_text("(unauthorized)")
