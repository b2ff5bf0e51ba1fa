"""Detection of provider errors on real prices: errors of every kind injected at random places
into the 60-ticker sample, and the warnings the clean files raise.

    python benchmarks/bench_quality.py [--sample DIR] [--repeats N] [--seed S]

Prints, per kind, how many injections were found with the right kind (and with any kind), then
every warning the untouched files raise, and the false-warning rate per 20 ticker-decades (a
decade is 2,520 sessions). A clean file's warning is listed for the reader to judge: the sample
holds genuine provider errors, which are not false warnings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.data.quality import detect  # noqa: E402
from pipeline.data.sources.csv_source import read_price_file  # noqa: E402
from tests.data.injections import INJECTORS, found  # noqa: E402

SESSIONS_PER_DECADE = 2520
COLUMN_SETS = {
    "all": None,
    "yfinance": ("open", "high", "low", "close", "adj_close", "volume"),
    "adj_close": ("adj_close",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=ROOT.parent / "shared/data/sp500-sample")
    parser.add_argument("--repeats", type=int, default=5, help="injections per ticker and kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--columns",
        choices=sorted(COLUMN_SETS),
        default="all",
        help="the columns the detectors see: all the sample has, yfinance's (no dividend or "
        "split column), or the adjusted close alone",
    )
    args = parser.parse_args()
    files = sorted(args.sample.glob("*.csv"))
    if not files:
        raise SystemExit(f"no CSV files in {args.sample}")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    keep = COLUMN_SETS[args.columns]
    frames = {path.stem: read_price_file(path) for path in files}
    frames = {t: f[[c for c in f.columns if keep is None or c in keep]] for t, f in frames.items()}
    print(f"columns: {', '.join(next(iter(frames.values())).columns)}")
    print(f"{len(frames)} tickers, {sum(map(len, frames.values()))} sessions")
    print(f"\n{'kind':18} {'injected':>8} {'right kind':>10} {'any kind':>9}")
    totals = [0, 0, 0]
    for name, (kind, inject) in INJECTORS.items():
        counts = [0, 0, 0]
        for frame in frames.values():
            for _ in range(args.repeats):
                damaged, first, last = inject(frame, rng)
                findings = detect(damaged)
                counts[0] += 1
                counts[1] += found(findings, kind, first, last)
                counts[2] += any(found(findings, k, first, last) for k in _kinds())
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        print(
            f"{name:18} {counts[0]:8d} {counts[1] / counts[0]:10.1%} {counts[2] / counts[0]:9.1%}"
        )
    print(f"{'all':18} {totals[0]:8d} {totals[1] / totals[0]:10.1%} {totals[2] / totals[0]:9.1%}")

    decades = sum(len(frame) for frame in frames.values()) / SESSIONS_PER_DECADE
    warnings = [(ticker, f) for ticker, frame in frames.items() for f in detect(frame)]
    print(f"\nclean files: {len(warnings)} warnings over {decades:.1f} ticker-decades")
    for ticker, finding in warnings:
        print(f"  {ticker}: {finding.describe()}")
    print(f"  = {len(warnings) / decades * 20:.2f} warnings per 20 ticker-decades (before judging)")
    print(f"\n{time.perf_counter() - started:.1f} s")


def _kinds() -> tuple[str, ...]:
    return ("unit", "split", "dividend", "jump", "stale", "gap")


if __name__ == "__main__":
    main()
