"""The web page's "What faces show" section in headless Chromium: each face's attributes on the page.

Same set-up as tests/test_web_page.py (Debian's chromium driven by Playwright, a real service
process); only the attributes that need no network (pose, eyes, quality) are ticked, so the test
runs whether or not the expression and age networks are installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sync_api = pytest.importorskip("playwright.sync_api")
from browser import CHROMIUM, FLAGS, needs_chromium
from service_load import ServerProcess

pytestmark = needs_chromium


def test_page_shows_each_faces_attributes(tmp_path, data_dir):
    with (ServerProcess(tmp_path / "data", profile="fast", workers=1) as server, sync_api.sync_playwright() as pw):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(server.url + "/")
        page.get_by_label("API key").fill(server.admin_key)
        page.get_by_role("button", name="Use key").click()
        sync_api.expect(page.locator("#status")).to_have_text("Key accepted.")
        for name in ("age", "gender", "expression"):
            page.locator(f"#analyze-form input[value={name}]").uncheck()
        page.locator("#analyze-file").set_input_files(str(data_dir / "video" / "two_people.jpg"))
        page.get_by_role("button", name="Analyze").click()
        sync_api.expect(page.locator("#status")).to_have_text("2 face(s) read.")
        items = page.locator("#analyze-results li")
        sync_api.expect(items).to_have_count(2)
        for text in items.all_inner_texts():
            assert "yaw " in text and "pitch " in text and "eyes open" in text and "quality 1.00" in text
        assert page.locator("#analyze-figure").is_visible()
        browser.close()
