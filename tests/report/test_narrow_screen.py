"""report.html at 800 px wide: wide tables scroll inside their own box, the ticker column
stays in place, and nothing makes the page itself scroll sideways."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.backtest.result import TickerResult
from pipeline.report import build_report
from pipeline.report.build import REPORT_HTML
from tests.report.conftest import OK_ROWS, sample_results, write_run

WIDTH = 800
PROBE = (
    "<script>window.addEventListener('load', function () {"
    " var d = document.documentElement;"
    " var box = document.querySelector('table.sortable').parentElement;"
    " var cell = document.querySelector('table.sortable td');"
    " document.body.setAttribute('data-widths', [d.scrollWidth, d.clientWidth, box.scrollWidth,"
    " box.clientWidth, getComputedStyle(cell).position].join(' ')); });</script>"
)


def wide_run(tmp_path: Path) -> Path:
    """Every column there is (holdout, costs), and long unbreakable strings everywhere."""
    rows = {f"T{i:03d}": dict(OK_ROWS["AAA"]) for i in range(30)}
    results = sample_results(rows, failed={"LONGREASON": "download: " + "x" * 300})
    results.append(TickerResult("BRK.B-" + "N" * 9, "skipped", "a" * 200))
    run_dir = write_run(
        tmp_path / "run",
        results,
        mode="holdout",
        cost_bps=10.0,
        warnings={"T001": ["w" * 250]},
        overrides=[f'data.cache_dir="{tmp_path.as_posix()}/{"d" * 150}"'],
    )
    build_report(run_dir)
    return run_dir / REPORT_HTML


class Parents(HTMLParser):
    """For every <table>, the class of the element that holds it."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.table_parents: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.table_parents.append(self.stack[-1])
        if tag not in ("meta", "br", "img", "input", "link"):
            self.stack.append((tag, dict(attrs).get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass


def css_rule(css: str, selector: str) -> str:
    match = re.search(r"(?:^|[\n}])\s*" + re.escape(selector) + r"\s*\{([^}]*)\}", css)
    assert match, f"no rule for {selector}"
    return " ".join(match.group(1).split())


@pytest.mark.slow
def test_every_table_sits_in_a_box_that_scrolls_sideways(tmp_path: Path) -> None:
    page = wide_run(tmp_path).read_text()
    parser = Parents()
    parser.feed(page)
    assert len(parser.table_parents) >= 10
    for tag, css_class in parser.table_parents:
        assert tag == "div" and css_class in ("scroll", "table-wrap"), (tag, css_class)
    css = page[page.index("<style>") : page.index("</style>")]
    assert "overflow-x: auto" in css_rule(css, ".scroll")
    assert "overflow-x: auto" in css_rule(css, ".table-wrap")
    sticky = css_rule(css, ".sortable th:first-child, .sortable td:first-child")
    assert "position: sticky" in sticky and "left: 0" in sticky
    assert "background" in sticky, "an opaque ticker column, or the figures show through"
    assert "max-width: 100%" in css_rule(css, "figure img")
    assert '<table class="sortable">' in page
    assert re.search(r'<div class="scroll"><table class="sortable">', page)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_at_800_px_the_page_does_not_scroll_sideways(tmp_path: Path) -> None:
    page = wide_run(tmp_path).read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", f"--window-size={WIDTH},1200",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    found = re.search(r'data-widths="(\d+) (\d+) (\d+) (\d+) (\w+)"', dom)
    assert found, dom[-500:]
    page_width, viewport, box_width, box_view, position = found.groups()
    assert int(viewport) <= WIDTH
    assert int(page_width) <= int(viewport), "the page scrolls sideways"
    assert int(box_width) > int(box_view), "the wide ticker table scrolls inside its box"
    assert position == "sticky"
