"""Reports render in a real browser: headless Chromium loads every image, logs no error,
fetches nothing from the network, and the screenshot is not blank."""

from __future__ import annotations

import pytest

from ppx.explain.browser import find_chromium, render

pytestmark = pytest.mark.browser

needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium not installed (Debian: apt-get install chromium; .ci/system-deps does it)",
)


@needs_chromium
def test_report_renders_with_its_plots(toy_report):
    seen = render(toy_report.path)
    assert seen.title.startswith("Why ppx-churn")
    assert seen.images_total == 8
    assert seen.images_loaded == seen.images_total
    assert seen.console_errors == []
    assert seen.external_requests == []
    assert seen.ink_fraction() > 0.02


@needs_chromium
def test_the_checker_catches_broken_pages(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>'
    )
    seen = render(page)
    assert seen.images_loaded == 0 and seen.images_total == 1
    assert any("boom" in e for e in seen.console_errors)
    assert seen.ink_fraction() < 0.01
