"""The report says which data.quality policy ran and what it did, from the manifest alone."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.report.aggregates import manifest_aggregates
from pipeline.report.html_page import render_html
from pipeline.report.markdown_page import render_markdown
from pipeline.report.quality_section import quality_summary
from pipeline.report.run_files import read_run
from tests.report.conftest import sample_results, write_run

RECORDS = {
    "warn": {
        "policy": "warn",
        "tickers_flagged": 2,
        "findings": {"unit": 1, "stale": 2},
        "skipped": [],
        "repaired": {},
    },
    "skip": {
        "policy": "skip",
        "tickers_flagged": 1,
        "findings": {"split": 1},
        "skipped": ["PENCE"],
        "repaired": {},
    },
    "repair": {
        "policy": "repair",
        "tickers_flagged": 1,
        "findings": {"unit": 1},
        "skipped": [],
        "repaired": {"LSE": [["2017-03-01", "2017-03-16", 0.01]]},
    },
}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def section(text: str, title: str = "Data-quality warnings") -> str:
    """From the section's heading (the last occurrence: the first is the navigation) on."""
    return text[text.rindex(title) :]


def rendered(tmp_path: Path, record: dict | None) -> tuple[str, str]:
    run = read_run(write_run(tmp_path / "run", sample_results()))
    if record is not None:
        run.manifest["data_quality"] = record
    else:
        run.manifest.pop("data_quality", None)
    agg = manifest_aggregates(run.manifest, run.daily)
    return page_text(render_html(run, agg, [])), render_markdown(run, agg, [])


@pytest.mark.parametrize("policy", ["warn", "skip", "repair"])
def test_the_policy_that_ran_is_named_in_both_reports(tmp_path: Path, policy: str) -> None:
    html, markdown = rendered(tmp_path, RECORDS[policy])
    for text in (html, markdown):
        assert f'data.quality = "{policy}"' in section(text)
    for other in set(RECORDS) - {policy}:
        assert f'data.quality = "{other}"' not in html


def test_warn_counts_the_findings_by_kind(tmp_path: Path) -> None:
    html, markdown = rendered(tmp_path, RECORDS["warn"])
    for text in (html, markdown):
        assert "2 ticker(s) with findings (1 unit, 2 stale)" in section(text)
        assert "skipped for quality" not in text


def test_skip_names_the_tickers_skipped_for_quality(tmp_path: Path) -> None:
    html, markdown = rendered(tmp_path, RECORDS["skip"])
    for text in (html, markdown):
        assert "1 skipped for quality: PENCE" in section(text)


def test_repair_lists_each_repair_with_its_dates_and_factor(tmp_path: Path) -> None:
    html, markdown = rendered(tmp_path, RECORDS["repair"])
    assert "1 repair(s) in LSE" in section(html)
    assert "LSE 2017-03-01 2017-03-16 0.01" in section(html)
    assert "| LSE | 2017-03-01 | 2017-03-16 | 0.01 |" in section(markdown)


def test_a_clean_run_says_nothing_was_found(tmp_path: Path) -> None:
    record = {"policy": "warn", "tickers_flagged": 0, "findings": {}, "skipped": [],
              "repaired": {}}  # fmt: skip
    html, markdown = rendered(tmp_path, record)
    for text in (html, markdown):
        assert 'data.quality = "warn"' in section(text)
        assert "no finding in any ticker's prices" in section(text)


def test_a_run_without_the_record_draws_as_before(tmp_path: Path) -> None:
    html, markdown = rendered(tmp_path, None)
    assert "data.quality =" not in html and "data.quality =" not in markdown
    assert quality_summary({}) is None


def test_tickers_from_outside_are_escaped(tmp_path: Path) -> None:
    evil = "<script>x</script>"
    record = {**RECORDS["skip"], "skipped": [evil]}
    run = read_run(write_run(tmp_path / "run", sample_results()))
    run.manifest["data_quality"] = record
    agg = manifest_aggregates(run.manifest, run.daily)
    html = render_html(run, agg, [])
    assert evil not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in render_markdown(run, agg, [])
