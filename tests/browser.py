"""Headless Chromium for the web page tests (shared by tests/test_web_*.py).

Debian's ``chromium`` package (``.ci/run`` installs it) driven by Playwright; nothing is
downloaded at test time. A module that uses it sets ``pytestmark = needs_chromium``.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
#: Headless, no GPU, and no request of the browser's own (updates, sync, QUIC) beside the page's.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
