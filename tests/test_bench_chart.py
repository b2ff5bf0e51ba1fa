"""bench.png: the legend sits clear of every bar and bar label."""

from __future__ import annotations

from matplotlib.transforms import Bbox

from pipeline.benchmarking.article import FITS, BenchResult, BenchTiming
from pipeline.benchmarking.outputs import bench_figure
from pipeline.benchmarking.variants import VARIANTS


def crafted_result() -> BenchResult:
    """Timings of every variant and fit, the parallel ones as fast as the CPUs allow: the
    tallest speed-up bars reach the top corners, where a legend drawn inside would sit."""
    timings = []
    for fit in FITS:
        base = 40.0 if fit == "plain" else 2.0
        for i, variant in enumerate(VARIANTS):
            seconds = base if i == 0 else base / (1.5 + i)
            timings.append(BenchTiming(variant.name, fit, 1 if i == 0 else 2, (seconds,)))
    return BenchResult(
        tickers=("AAPL", "MSFT"),
        failed_downloads=(),
        data={"mode": "in_sample", "start": "2010-01-01", "end": "2019-12-31"},
        usable_cpus=2,
        repeats=1,
        start_method="fork",
        timings=tuple(timings),
        mismatches=(),
        fast_vs_plain={},
    )


def test_the_legend_is_clear_of_the_bars_and_their_labels() -> None:
    figure = bench_figure(crafted_result())
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    assert [text.get_text() for text in legend.get_texts()] == ["plain fit", "fast path"]
    drawn = 0
    for axes in figure.axes:
        assert axes.get_legend() is None, "one legend for both panels, outside them"
        assert not box.overlaps(axes.get_window_extent(renderer))
        frame = axes.get_window_extent(renderer)
        for item in [*axes.patches, *axes.texts]:
            # as drawn: a bar on a log axis reaches down out of sight, clipped to the frame
            shown = Bbox.intersection(item.get_window_extent(renderer), frame)
            assert shown is None or not box.overlaps(shown), item
            drawn += 1
    assert drawn >= 4 * len(VARIANTS)
    assert not box.overlaps(figure._suptitle.get_window_extent(renderer)), "clear of the title"
    for axes in figure.axes:
        for label in axes.get_xticklabels():
            assert not box.overlaps(label.get_window_extent(renderer)), label.get_text()
