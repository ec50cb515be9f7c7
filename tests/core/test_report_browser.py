"""The HTML report in a real browser: headless Chromium loads the page from disk and decodes every
figure. Needs Chromium (`.ci/run` installs Debian's package when it can); skipped without it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from clbench.report.command import generate_report
from tests.core.test_report_support import standard_results

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)

#: Appended to a copy of the page: after load, write what the browser made of each image and table.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-probe", JSON.stringify({images, tables: document.querySelectorAll("table").length,
    title: document.title}));
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
def test_html_report_opens_in_chromium_with_its_figures(tmp_path):
    standard_results(tmp_path)
    page = generate_report(tmp_path, fmt="html", warn=lambda _: None)
    html = page.read_text(encoding="utf-8")
    n_images = html.count("<img")
    assert n_images >= 3
    probed = tmp_path / "probed.html"  # the report itself stays script-free
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert found, "the page did not finish loading in Chromium"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["title"] and probe["tables"] >= 3
    assert len(probe["images"]) == n_images
    for complete, width, height in probe["images"]:  # decoded: a broken image has no natural size
        assert complete and width > 100 and height > 100
