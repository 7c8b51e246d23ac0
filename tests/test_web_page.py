"""The web page, end to end in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Enrol two people through the page, identify a photo of both, read the names off the page, delete
one person and check they are gone from the list and come out unknown. ``.ci/run`` installs the
``chromium`` package; nothing is downloaded at test time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sync_api = pytest.importorskip("playwright.sync_api")
from service_load import ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def test_enrol_identify_delete_in_the_browser(server, page, data_dir, tmp_path):
    knn = data_dir / "knn-small"
    page.goto(server.url + "/")
    assert page.title() == "faceprint"
    page.get_by_label("API key").fill(server.admin_key)
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.locator("#status")).to_have_text("Key accepted.")

    page.locator("summary").click()
    page.get_by_label("Name", exact=True).first.fill("friends")
    page.get_by_role("button", name="Create").click()
    sync_api.expect(page.locator("#threshold")).to_contain_text("Threshold in use: 0.3586")

    for person in ("obama", "biden"):
        page.locator("#enrol-name").fill(person)
        page.locator("#enrol-files").set_input_files([str(p) for p in sorted((knn / "train" / person).iterdir())])
        page.get_by_role("button", name="Enrol").click()
        sync_api.expect(page.locator("#status")).to_have_text(f"Enrolled {person}: 2 face(s) added, 2 in all.")
    sync_api.expect(page.locator("#people tr")).to_have_count(2)

    page.locator("#identify-file").set_input_files(str(knn / "test" / "obama_and_biden.jpg"))
    page.get_by_role("button", name="Identify").click()
    sync_api.expect(page.locator("#status")).to_have_text("2 face(s): 2 known, 0 unknown.")
    results = page.locator("#identify-results li")
    texts = sorted(results.all_inner_texts())
    assert texts[0].startswith("Face") and any(": biden (" in t for t in texts) and any(": obama (" in t for t in texts)
    sync_api.expect(page.locator("#result-figure")).to_be_visible()
    page.locator("#result-canvas").screenshot(path=str(tmp_path / "identified.png"))

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete obama").click()
    sync_api.expect(page.locator("#status")).to_have_text("Deleted obama (2 faces).")
    sync_api.expect(page.locator("#people tr")).to_have_count(1)
    sync_api.expect(page.locator("#people")).not_to_contain_text("obama")

    page.get_by_role("button", name="Identify").click()
    sync_api.expect(page.locator("#status")).to_have_text("2 face(s): 1 known, 1 unknown.")
    sync_api.expect(page.locator("#identify-results")).to_contain_text("unknown")


def test_wrong_key_is_refused_on_the_page(server, page):
    page.goto(server.url + "/")
    page.evaluate("sessionStorage.clear()")
    page.get_by_label("API key").fill("fp_000000000000_wrong")
    page.get_by_role("button", name="Use key").click()
    sync_api.expect(page.locator("#status")).to_contain_text("(unauthorized)")
