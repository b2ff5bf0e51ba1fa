"""The bench's table, bench.json and bench.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pipeline.benchmarking.article import FITS, BenchResult, BenchRow
from pipeline.benchmarking.variants import VARIANTS
from pipeline.outputs import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BENCH_JSON = "bench.json"
BENCH_PNG = "bench.png"
FIT_LABELS = {"plain": "plain fit", "fast": "fast path"}


def format_bench_table(result: BenchResult) -> str:
    """The bench as a text table, one line per variant and fit, then what it ran on."""
    header = (
        f"{'variant':<20} {'fit':<9} {'workers':>7} {'chunk':>5} {'seconds':>9} "
        f"{'speedup':>7} {'efficiency':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in _ordered(result.rows):
        chunk = "-" if row.chunksize is None else str(row.chunksize)
        lines.append(
            f"{row.label:<20} {FIT_LABELS[row.fit]:<9} {row.workers:>7} {chunk:>5} "
            f"{row.seconds:>9.3f} {row.speedup:>6.2f}x {row.efficiency:>10.0%}"
        )
    lines += _notes(result)
    return "\n".join(lines)


def _ordered(rows: list[BenchRow]) -> list[BenchRow]:
    fit_rank = {fit: i for i, fit in enumerate(FITS)}
    variant_rank = {variant.name: i for i, variant in enumerate(VARIANTS)}
    return sorted(rows, key=lambda r: (fit_rank[r.fit], variant_rank.get(r.variant, 99)))


def _notes(result: BenchResult) -> list[str]:
    data = result.data
    agreement = result.fast_vs_plain
    same = "yes" if result.identical else "NO: " + ", ".join(result.mismatches)
    notes = [
        "",
        f"{len(result.tickers)} tickers ({', '.join(result.tickers[:8])}"
        f"{', ...' if len(result.tickers) > 8 else ''}), {data['mode']}, "
        f"{data['start']}..{data['end']}, source {data['source']}; median of "
        f"{result.repeats} run(s); start method {result.start_method}; "
        f"{result.usable_cpus} usable CPUs ({result.machine.get('cpu_model', 'unknown')}), "
        f"load average {_load(result.machine, 'start')} at the start, "
        f"{_load(result.machine, 'end')} at the end.",
        "speedup: sequential seconds / seconds, same fit and repeat, median over repeats; "
        "efficiency: speedup / min(workers, usable CPUs).",
        f"results identical across variants: {same}",
        f"fast path vs plain fit: {agreement['identical_tickers']} of {agreement['tickers']} "
        f"tickers identical, positions agree on {agreement['position_agreement']:.2%} of days.",
    ]
    if data["mode"] == "in_sample":
        notes.append(
            "in_sample: the model is scored on its own training rows (the article's "
            "setting); it describes the past, it is not a forecast."
        )
    if result.failed_downloads:
        notes.append(f"not measured (no prices): {', '.join(result.failed_downloads)}")
    return notes


def _load(machine: dict, when: str) -> str:
    values = machine.get(f"load_average_at_{when}") or []
    return "/".join(f"{value:.1f}" for value in values) or "unknown"


def write_bench_outputs(result: BenchResult, out_dir: Path) -> list[Path]:
    """Write bench.json (every figure and the machine) and bench.png (a bar chart)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / BENCH_JSON, out_dir / BENCH_PNG
    atomic_write_text(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    atomic_write(png_path, lambda out: _draw_chart(result, out))
    return [json_path, png_path]


def _two_and_five(value: float, _position: int) -> str:
    """Label the 2x and 5x minor ticks of a log axis, plainly; leave the others bare."""
    return f"{value:g}" if f"{value:.0e}"[0] in "25" else ""


def _draw_chart(result: BenchResult, out: BinaryIO) -> None:
    bench_figure(result).savefig(out, dpi=110, format="png")


def bench_figure(result: BenchResult) -> Figure:
    """bench.png's figure: seconds and speed-up per variant, one bar per fit; one legend for
    both panels, below them, where no bar, bar label or title can sit under it."""
    # The object API with the Agg canvas: no pyplot state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(11, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    seconds_axes, speedup_axes = figure.subplots(1, 2)
    rows = _ordered(result.rows)
    labels = [variant.label for variant in VARIANTS]
    width = 0.8 / len(FITS)
    for offset, fit in enumerate(FITS):
        by_variant = {row.variant: row for row in rows if row.fit == fit}
        xs = [i + (offset - (len(FITS) - 1) / 2) * width for i in range(len(VARIANTS))]
        seconds = [by_variant[v.name].seconds if v.name in by_variant else 0 for v in VARIANTS]
        gains = [by_variant[v.name].speedup if v.name in by_variant else 0 for v in VARIANTS]
        bars = seconds_axes.bar(xs, seconds, width, label=FIT_LABELS[fit])
        seconds_axes.bar_label(bars, fmt="%.2f", fontsize=7)
        bars = speedup_axes.bar(xs, gains, width, label=FIT_LABELS[fit])
        speedup_axes.bar_label(bars, fmt="%.2fx", fontsize=7)
    seconds_axes.set_yscale("log")
    seconds_axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    seconds_axes.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    seconds_axes.set_ylabel("wall seconds, backtest stage (log scale)")
    seconds_axes.set_title("Time per variant (lower is better)")
    speedup_axes.axhline(result.usable_cpus, color="grey", linestyle="--", linewidth=1)
    speedup_axes.text(
        -0.4,
        result.usable_cpus,
        f" {result.usable_cpus} usable CPUs",
        va="bottom",
        fontsize=8,
        color="grey",
    )
    speedup_axes.set_ylabel("speed-up over sequential, same fit")
    speedup_axes.set_title("Speed-up (higher is better)")
    for axes in (seconds_axes, speedup_axes):
        axes.set_xticks(range(len(VARIANTS)), labels, rotation=20, ha="right", fontsize=8)
        axes.margins(y=0.12)  # room above the tallest bar for its label
    handles, names = seconds_axes.get_legend_handles_labels()
    figure.legend(handles, names, loc="outside lower center", ncols=len(FITS), fontsize=8)
    data = result.data
    figure.suptitle(
        f"{len(result.tickers)} tickers, {data['mode']}, {data['start']}..{data['end']}: "
        f"median of {result.repeats} run(s), {result.start_method}"
    )
    return figure
