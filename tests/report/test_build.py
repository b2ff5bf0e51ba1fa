"""build_report on small run directories written as the runner writes them."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.backtest.result import TickerResult
from pipeline.errors import PipelineError, RunDirectoryError
from pipeline.report import build_report
from pipeline.report.build import REPORT_HTML, REPORT_MD, draw_report
from pipeline.report.run_files import read_run
from pipeline.report.tables import IN_SAMPLE_WARNING
from tests.report.conftest import OK_ROWS, sample_results, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL_TICKER = "<script>alert('t')</script>"
EVIL_REASON = 'download: <img src=x onerror=alert(1)> & "quoted"'


class PageParser(HTMLParser):
    """Collects tags, the URL-bearing attributes and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "data", "poster"):
                self.urls.append((tag, name, value or ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, list[Path]]:
    """One walk-forward run, built once: the read-only checks share it (rendering costs ~0.5 s)."""
    run_dir = write_run(tmp_path_factory.mktemp("built") / "run", sample_results())
    return run_dir, build_report(run_dir)


@pytest.fixture
def run_dir(built) -> Path:
    return built[0]


def test_writes_every_file(built):
    run_dir, written = built
    names = {path.name for path in written}
    assert {REPORT_HTML, REPORT_MD} <= names
    charts = [path for path in written if path.suffix == ".png"]
    assert len(charts) == 7  # five of the run, two of its statistics (intervals, baselines)
    assert {"chart_sharpe_intervals.png", "chart_portfolio_baselines.png"} <= names
    for path in written:
        assert path.parent == run_dir
        assert path.stat().st_size > 0
    for chart in charts:
        assert chart.read_bytes()[:8] == PNG_MAGIC
    assert not list(run_dir.glob(".*.tmp")), "a temporary file was left behind"


def test_html_is_self_contained(run_dir):
    page = (run_dir / REPORT_HTML).read_text()
    for outside in ("http://", "https://", "//cdn", "url(", "@import"):
        assert outside not in page
    parsed = parse(page)
    assert parsed.urls, "the charts should be embedded"
    for tag, name, value in parsed.urls:
        if tag == "img":
            assert value.startswith("data:image/png;base64,"), (tag, name, value[:40])
        else:
            assert value.startswith("#"), (tag, name, value)
    assert parsed.tags.count("img") == 7
    assert "link" not in parsed.tags
    assert parsed.tags.count("script") == 1  # the inline sort script, nothing loaded


def test_html_lists_tickers_in_requested_order_without_script(run_dir):
    page = (run_dir / REPORT_HTML).read_text()
    table = page[page.index('<table class="sortable">') :]
    rows = re.findall(r'<tr class="(\w+)"><td class="text">([^<]*)</td>', table)
    assert rows == [("ok", "AAA"), ("ok", "BBB"), ("ok", "CCC"), ("failed", "DDD")]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "banner"), [("in_sample", True), ("holdout", False)])
def test_in_sample_banner(make_run, built, mode, banner):
    run_dir = make_run(mode=mode)
    build_report(run_dir)
    walk_forward_page = (built[0] / REPORT_HTML).read_text()
    assert 'class="banner"' not in walk_forward_page
    page = (run_dir / REPORT_HTML).read_text()
    markdown = (run_dir / REPORT_MD).read_text()
    assert ('class="banner"' in page) is banner
    assert (IN_SAMPLE_WARNING.split(":")[0] in "".join(parse(page).text)) is banner
    assert ("**Warning:** In-sample run" in markdown) is banner


@pytest.mark.slow
def test_outside_strings_are_escaped(make_run):
    results = [
        *sample_results(),
        TickerResult(EVIL_TICKER, "failed", EVIL_REASON),
    ]
    run_dir = make_run(results=results, warnings={EVIL_TICKER: ["a <b>bold</b> note"]})
    build_report(run_dir)
    page = (run_dir / REPORT_HTML).read_text()
    parsed = parse(page)
    assert parsed.tags.count("script") == 1
    assert parsed.tags.count("img") == 7  # the charts only: the reason's <img> is text
    assert "b" not in parsed.tags
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in page
    assert EVIL_TICKER in "".join(parsed.text)  # shown to the reader as typed
    markdown = (run_dir / REPORT_MD).read_text()
    assert "<script>" not in markdown and "<img" not in markdown


@pytest.mark.slow
def test_run_level_figures_are_the_manifests_not_recomputed(make_run):
    run_dir = make_run()
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["aggregates"]["portfolio_strategy"]["sharpe"] = 12.5  # no recomputation gives it
    manifest["aggregates"]["counts"]["ok"] = 97
    path.write_text(json.dumps(manifest))
    build_report(run_dir)
    for name in (REPORT_HTML, REPORT_MD):
        text = (run_dir / name).read_text()
        assert "12.50" in text and "97 of 4" in text, name


@pytest.mark.slow
def test_drawing_is_a_pure_function_of_the_three_inputs(make_run):
    """What the run draws from memory and what `pipeline report` draws from disk are one."""
    run_dir = make_run()
    run = read_run(run_dir)
    files = draw_report(run.summary, run.daily, run.manifest, run_name=run_dir.name)
    again = draw_report(run.summary.copy(), run.daily.copy(), run.manifest, run_name="run")
    assert files == again
    assert list(files)[-2:] == [REPORT_MD, REPORT_HTML]
    assert not any(run_dir.glob("*.png")), "drawing writes nothing"
    written = build_report(run_dir)
    assert {path.name: path.read_bytes() for path in written} == files


SCRIPT = "<script>alert(1)</script>"


@pytest.mark.slow
@pytest.mark.parametrize(
    "place",
    ["ticker", "reason", "warning", "run-name", "config-value"],
)
def test_a_script_anywhere_from_outside_stays_text(tmp_path: Path, place: str) -> None:
    """Escaping is the templates' own: no place a value from outside reaches runs as markup."""
    ticker = f"T{SCRIPT}" if place == "ticker" else "BAD"
    reason = f"download: {SCRIPT}" if place == "reason" else "download: HTTP 404"
    warnings = {"AAA": [f"note {SCRIPT}"]} if place == "warning" else {}
    cache_dir = f'data.cache_dir="{tmp_path.as_posix()}/{SCRIPT}"'
    overrides = [cache_dir] if place == "config-value" else []
    name = f"run{SCRIPT}".replace("/", "") if place == "run-name" else "run"
    results = [*sample_results(), TickerResult(ticker, "failed", reason)]
    run_dir = write_run(tmp_path / name, results, warnings=warnings, overrides=overrides)
    build_report(run_dir)
    page = (run_dir / REPORT_HTML).read_text()
    parsed = parse(page)
    assert parsed.tags.count("script") == 1, "only the page's own sort script"
    assert "<script>alert" not in page
    shown = SCRIPT.replace("/", "") if place == "run-name" else SCRIPT
    assert shown in "".join(parsed.text), "shown to the reader as typed"


def _markdown_row(markdown: str, ticker: str) -> list[str]:
    section = markdown[markdown.index("## Per ticker") :]
    line = next(line for line in section.splitlines() if line.startswith(f"| {ticker} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def _markdown_header(markdown: str) -> list[str]:
    section = markdown[markdown.index("## Per ticker") :]
    line = next(line for line in section.splitlines() if line.startswith("| ticker |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.parametrize("ticker", ["AAA", "BBB", "CCC"])
def test_markdown_numbers_equal_the_summary(run_dir, ticker):
    markdown = (run_dir / REPORT_MD).read_text()
    cells = dict(zip(_markdown_header(markdown), _markdown_row(markdown, ticker), strict=True))
    expected = OK_ROWS[ticker]
    assert float(cells["accuracy"].rstrip("%")) / 100 == pytest.approx(
        expected["accuracy"], abs=5e-5
    )
    assert float(cells["before costs (x)"]) == pytest.approx(expected["cum_return"], abs=5e-4)
    assert float(cells["after costs (x)"]) == pytest.approx(expected["cum_return_net"], abs=5e-4)
    assert float(cells["buy & hold (x)"]) == pytest.approx(expected["buy_hold"], abs=5e-4)
    assert float(cells["Sharpe"]) == pytest.approx(expected["sharpe"], abs=5e-3)
    assert float(cells["max drawdown"].rstrip("%")) / 100 == pytest.approx(
        expected["max_drawdown"], abs=5e-4
    )
    assert int(cells["days"]) == expected["n_days"]


def test_markdown_headline(run_dir):
    markdown = (run_dir / REPORT_MD).read_text()
    assert (
        "| Tickers ok | 3 of 4 | 0 skipped, 1 failed; 3 with less than a year of evaluation "
        "days |" in markdown
    )
    assert "| Median accuracy | 55.00% |" in markdown  # median of 0.60, 0.50, 0.55
    assert "| Beat buy & hold after costs | 33.3% | 66.7% before costs; " in markdown
    assert "| Significantly above majority class | 33.3% | 1 of 3 tickers," in markdown
    assert "| DDD | failed | download: HTTP 404 (after 4 tries) |" in markdown


@pytest.mark.slow
def test_needs_no_data_cache_and_rebuilds_after_deletion(make_run):
    run_dir = make_run()
    cache = run_dir.parent / "cache-that-does-not-exist"
    assert not cache.exists()
    first = build_report(run_dir)
    page = (run_dir / REPORT_HTML).read_text()
    (run_dir / REPORT_HTML).unlink()
    (run_dir / REPORT_MD).unlink()
    second = build_report(run_dir)
    assert second == first
    assert (run_dir / REPORT_HTML).read_text() == page
    assert (run_dir / REPORT_MD).is_file()
    assert not cache.exists()


def test_only_failures_still_builds(make_run):
    results = sample_results({}, failed={"X": "download: timeout"}, skipped={"Y": "too few"})
    run_dir = make_run(results=results)
    written = build_report(run_dir)
    assert all(path.stat().st_size > 0 for path in written)
    page = (run_dir / REPORT_HTML).read_text()
    assert "0 of 2" in page


def test_missing_result_file_is_named(make_run):
    run_dir = make_run()
    (run_dir / "daily.parquet").unlink()
    with pytest.raises(RunDirectoryError, match=r"daily\.parquet missing"):
        build_report(run_dir)
    assert issubclass(RunDirectoryError, PipelineError), "the CLI's one handler must cover it"
