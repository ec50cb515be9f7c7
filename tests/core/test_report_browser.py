"""The reports as readers see them: the markdown through cmark-gfm (GitHub's own renderer, via
the cmarkgfm binding), and the HTML report and the rendered markdown in headless Chromium, which
loads each page from disk and must decode every figure. The Chromium tests need Chromium (`.ci/run`
installs Debian's package when it can) and are skipped without it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from clbench.report.command import generate_report
from tests.core.test_report_support import standard_results

CHROMIUM = next(
    (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None
)

#: Appended to a copy of the page: after load, write what the browser made of each image and table.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]);
  document.body.setAttribute("data-probe", JSON.stringify({images, tables: document.querySelectorAll("table").length,
    title: document.title}));
});
</script>"""


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")


def github_html(markdown: str) -> str:
    """``markdown`` rendered as GitHub renders a .md file (cmark-gfm with its extensions)."""
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def test_markdown_report_renders_with_githubs_renderer(tmp_path):
    standard_results(tmp_path)
    page = generate_report(tmp_path, warn=lambda _: None)
    markdown = page.read_text(encoding="utf-8")
    html = github_html(markdown)
    blocks = re.findall(r"(?:^\|.*\n)+", markdown, flags=re.M)
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    assert len(tables) == len(blocks) >= 3  # every pipe block became a table
    for table, block in zip(tables, blocks):
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        assert len(rows) == len(block.splitlines()) - 1  # all rows but the delimiter row
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in rows}
        assert len(widths) == 1 and widths.pop() >= 2  # no row lost or gained a cell
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 3
    for src in images:  # relative links that resolve beside the report, as on GitHub
        assert not src.startswith(("/", "http")) and (page.parent / src).is_file()


@needs_chromium
def test_markdown_report_rendered_like_github_shows_its_figures_in_chromium(tmp_path):
    standard_results(tmp_path)
    page = generate_report(tmp_path, warn=lambda _: None)
    html = (
        f"<!DOCTYPE html><html><head><title>report.md</title></head><body>{github_html(page.read_text())}</body></html>"
    )
    check_in_chromium(tmp_path, html, tmp_path / "rendered_md.html")


@needs_chromium
def test_html_report_opens_in_chromium_with_its_figures(tmp_path):
    standard_results(tmp_path)
    page = generate_report(tmp_path, fmt="html", warn=lambda _: None)
    check_in_chromium(tmp_path, page.read_text(encoding="utf-8"), tmp_path / "probed.html")


def check_in_chromium(tmp_path, html: str, probed) -> None:
    """Load ``html`` (written with a probe script to ``probed``) in headless Chromium; assert
    that it loaded, has its tables, and decoded every image."""
    n_images = html.count("<img")
    assert n_images >= 3
    # the page is written to a new file with the probe: reports themselves stay script-free
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
