"""The `pipeline` command line. Only this module turns errors into exit codes.

Exit codes (CONTRACT.md): 0 every ticker ok or skipped; 2 bad usage or config; 3 the run finished
but a ticker failed; 4 another run holds the cache lock; 5 every ticker was skipped (none ok);
130 interrupted (Ctrl-C), 128 + N for signal N (143 for SIGTERM, 129 for SIGHUP); 1 anything else.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer
from typer.core import TyperCommand

from pipeline.config import DEFAULT_CONFIG_PATH, Config, config_warnings, load_config
from pipeline.configs import DEFAULT_BENCH_CONFIG
from pipeline.display import error_line, printable
from pipeline.errors import (
    CacheLockedError,
    ConfigError,
    OutPathError,
    PipelineError,
    RunDirectoryError,
)
from pipeline.exiting import exit_now
from pipeline.interrupts import signal_number, terminate_as_interrupt
from pipeline.logs import run_log, setup_console_logging

if TYPE_CHECKING:
    from pipeline.outputs import ClaimedDir
    from pipeline.runner import RunResult

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TICKER_FAILED = 3
EXIT_LOCKED = 4
EXIT_ALL_SKIPPED = 5  # every ticker skipped: nothing was backtested
EXIT_INTERRUPTED = 130
EXIT_SIGNAL_BASE = 128  # + the signal's number: 130 for Ctrl-C, 143 for SIGTERM

app = typer.Typer(
    help=(
        "Config-driven backtests of a per-ticker lag-feature SVM.\n\n"
        "A run downloads daily prices into a Parquet cache, backtests every ticker and writes "
        "a run directory (summary.csv, daily.parquet, manifest.json). Start with "
        "`pipeline run`, which runs configs/demo.toml offline."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class PlainUsageCommand(TyperCommand):
    """Usage lines as the README writes them: `pipeline report RUN_DIR`, not `{RUN_DIR}`."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Let --out name an earlier run's directory: its files are replaced by this run's "
        "(the old directory is removed once this run has written its results, and kept if it "
        "ends before). Never writes through `latest`, a symlink or a file.",
    ),
]


ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="CONFIG",
        help=f"TOML config file, or a packaged config by name: demo, article "
        f"[default: {DEFAULT_CONFIG_PATH}, else the packaged demo]",
        show_default=False,
    ),
]
RequiredConfigArg = Annotated[Path, typer.Argument(metavar="CONFIG", help="TOML config file.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override one key, e.g. --set execution.workers=2 or "
        '--set \'data.tickers=["KO","XOM"]\'. VALUE is read as TOML; a bare word is a string. '
        "Repeatable.",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress bars and no INFO lines; `run` prints only its headline and problems.",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"pipeline {version('pipeline')}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """The options every command shares; the help is the app's."""


def _error(message: str) -> None:
    """One line on stderr: control characters removed, a huge value quoted by its prefix."""
    typer.echo(f"pipeline: {error_line(message)}", err=True)


def _echo(text: str) -> None:
    """Print text that may come from files (tickers, reasons, a run directory) without the
    escape sequences and control characters it may carry."""
    typer.echo(printable(text))


@contextmanager
def exit_codes() -> Iterator[None]:
    """Map the pipeline's typed errors to the contract's exit codes, with one clear line."""
    try:
        yield
    except ConfigError as exc:
        _error(f"config error: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except CacheLockedError as exc:
        _error(str(exc))
        raise typer.Exit(EXIT_LOCKED) from None
    except (RunDirectoryError, OutPathError) as exc:  # a path the user gave is not usable
        _error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (pipeline.interrupts)
        signum = signal_number(exc)
        _error("interrupted" if signum == signal.SIGINT else f"interrupted by {exc}")
        raise typer.Exit(EXIT_SIGNAL_BASE + signum) from None
    except PipelineError as exc:  # raised on purpose, so it says what went wrong: one line
        _error(str(exc))
        raise typer.Exit(EXIT_FAILURE) from None
    except OSError as exc:  # the system refused: a full disk, a read-only filesystem
        from pipeline.outputs import describe_os_error

        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{describe_os_error(exc)}")
        raise typer.Exit(EXIT_FAILURE) from None


# What code reading a damaged file raises when the damage is deeper than its reader checks.
_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)


@contextmanager
def damaged_runs(*run_dirs: Path) -> Iterator[None]:
    """`pipeline report` and `compare` read files anyone may have edited: whatever deeper
    damage the readers' checks (pipeline.report.run_files) miss is one line, exit 2, too."""
    try:
        yield
    except _DAMAGE as exc:
        detail = " ".join(str(exc).split())[:160]
        names = " or ".join(str(path) for path in run_dirs)
        _error(
            f"cannot read the run in {names}: a file is damaged ({type(exc).__name__}: "
            f"{detail}); run the pipeline again to rewrite it"
        )
        raise typer.Exit(EXIT_USAGE) from None


@contextmanager
def _output_directory(
    out: Path | None, default: tuple[Path, str], force: bool, markers: tuple[str, ...]
) -> Iterator[Path]:
    """A fresh directory for a command's files: `out` (refused when it exists, unless `force`
    and it holds one of `markers`), else a new `default` (parent, name). An old directory
    replaced with `force` is deleted when the block ends normally, given back otherwise."""
    from pipeline.outputs import ClaimedDir, claim_out_dir, new_directory

    if out is not None:
        claimed = claim_out_dir(out, force=force, markers=markers)
    else:
        claimed = ClaimedDir(new_directory(*default))
    try:
        yield claimed.path
    except BaseException:
        claimed.give_back()
        raise
    claimed.keep()


def _setup_logging(quiet: bool, log_format: str = "text") -> None:
    setup_console_logging(quiet, log_format)  # type: ignore[arg-type]


def _load(
    config_path: Path | None, overrides: list[str] | None, default: Path = DEFAULT_CONFIG_PATH
) -> Config:
    """The config named on the command line, or `default` (packaged when no file is there)."""
    return load_config(config_path, overrides or [], default=default)


def _format_table(frame: pd.DataFrame, float_digits: int = 4) -> str:
    if frame.empty:
        return "(no rows)"
    return frame.to_string(index=False, float_format=lambda value: f"{value:.{float_digits}f}")


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormatChoice,
    typer.Option(
        "--log-format",
        help="text for people, json for log shippers (one JSON object a line).",
    ),
]


RetryDeadOption = Annotated[
    bool,
    typer.Option(
        "--retry-dead",
        help="Ask the source again for symbols it called unknown or delisted in the last "
        "data.download.dead_ttl_days days (they are skipped otherwise).",
    ),
]


@app.command(cls=PlainUsageCommand)
def run(
    config: ConfigArg = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Run directory, created new: an existing one is refused (see --force). "
            "Default: <report.out_dir>/<UTC time>-<config hash>, and <report.out_dir>/latest "
            "then points at it.",
        ),
    ] = None,
    force: ForceOption = False,
    set_: SetOption = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="YYYY-MM-DD",
            help="Run as of this day: the data end date (data.end). Re-runs or backfills a past "
            "day reproducibly; default: data.end from the config, else today.",
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="When another run holds the cache, wait up to this long for it instead of "
            "exiting 4 at once.",
        ),
    ] = 0.0,
    log_format: LogFormatOption = LogFormatChoice.text,
    quiet: QuietOption = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Recompute every ticker, ignoring the results stored by earlier runs (they "
            "are rewritten). Without it, a ticker whose prices only gained days at the end "
            "reuses its stored rows and pays for the new days only.",
        ),
    ] = False,
    retry_dead: RetryDeadOption = False,
) -> None:
    """Run every stage: download into the cache, backtest each ticker, write the run directory.

    The run directory holds summary.csv/.parquet, daily.parquet, manifest.json, report.html,
    report.md, charts and run.log. Every run is also appended to <report.out_dir>/history.jsonl.
    Exits 0 when every ticker is ok or skipped, 3 when the run finished but a ticker failed,
    5 when every ticker was skipped (nothing was backtested). <report.out_dir>/latest moves
    only to a run with at least one ticker ok.
    """
    from pipeline.outputs import ClaimedDir, claim_out_dir, default_run_dir, point_latest
    from pipeline.runner import run_pipeline

    _setup_logging(quiet, log_format.value)
    overrides = [*(set_ or []), *([f"data.end={_as_of_day(as_of)}"] if as_of else [])]
    with exit_codes():
        resolved = _load(config, overrides)
        if out is not None:
            claimed = claim_out_dir(out, force=force)
        else:
            claimed = ClaimedDir(default_run_dir(resolved.report.out_dir, resolved.digest()))
    run_dir = claimed.path
    record = _RunRecord(resolved, run_dir, claimed)
    try:
        with exit_codes(), run_log(run_dir, log_format.value):  # type: ignore[arg-type]
            result = run_pipeline(
                resolved,
                run_dir,
                show_progress=not quiet,
                lock_wait_seconds=wait,
                full=full,
                retry_dead=retry_dead,
            )
        claimed.keep()
        if out is None and not _any_ok(result):
            _error("latest not moved: no ticker finished ok")
        elif out is None:
            moved = point_latest(resolved.report.out_dir, run_dir)
            if moved is not None:
                _error(f"warning: {moved}")
        record.finish(run_exit_code(result), result.manifest)
    except typer.Exit as stop:
        record.finish(stop.exit_code)
        raise
    except BaseException:
        record.finish(EXIT_FAILURE)
        raise
    _print_run_summary(
        result.summary, result.manifest, run_dir / "report.html", quiet, result.seconds
    )
    if result.failed_tickers:
        # Every failed ticker is named (CONTRACT.md): printable, but not cut to an error's length.
        typer.echo(f"pipeline: {printable(', '.join(result.failed_tickers), newlines=False)}"
                   .replace("pipeline: ", "pipeline: failed tickers: ", 1), err=True)
    raise typer.Exit(run_exit_code(result))


def run_exit_code(result: RunResult) -> int:
    """0 when every ticker is ok or skipped, 3 when at least one failed (CONTRACT.md), 5 when
    every ticker was skipped (nothing was backtested: a universe outside the dates, dead
    symbols, every price file flagged by data.quality = "skip")."""
    counts = result.summary["status"].value_counts()
    return status_exit_code(*(int(counts.get(status, 0)) for status in ("ok", "skipped", "failed")))


def status_exit_code(ok: int, skipped: int, failed: int) -> int:
    """The exit code of a finished run or sweep from its counts of tickers by status."""
    if failed:
        return EXIT_TICKER_FAILED
    return EXIT_ALL_SKIPPED if skipped and not ok else EXIT_OK


def _any_ok(result: RunResult) -> bool:
    """At least one ticker finished ok: only then may `latest` point at the run."""
    return bool((result.summary["status"] == "ok").any())


def _as_of_day(text: str) -> str:
    """--as-of's day, checked here so that its error names --as-of, not data.end."""
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        _error(f"--as-of {text!r}: expected a day as YYYY-MM-DD, e.g. --as-of 2024-03-28")
        raise typer.Exit(EXIT_USAGE) from None


class _RunRecord:
    """Appends the run to the history index however it ends."""

    def __init__(self, config: Config, run_dir: Path, claimed: ClaimedDir | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.claimed = claimed
        self.started_at = datetime.now(UTC)
        self.finished = False

    def finish(self, exit_code: int, manifest: dict | None = None) -> None:
        """One history line; a history that cannot be written costs one warning, not the run.
        A run that ended before writing its results gives back the run it was to replace."""
        from pipeline.errors import OutputError
        from pipeline.history import append_history
        from pipeline.logs import RUN_LOG_NAME

        if self.finished:
            return
        self.finished = True
        if exit_code == EXIT_LOCKED and _holds_only(self.run_dir, RUN_LOG_NAME):
            shutil.rmtree(self.run_dir)  # never started: leave no empty run directory behind
        restored = self.claimed is not None and self.claimed.aside is not None
        if self.claimed is not None:
            self.claimed.give_back()
        written = self.run_dir.exists() and not restored
        entry = {
            "run_id": self.run_dir.name,
            "run_dir": str(self.run_dir) if written else None,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "as_of": self.config.data.end.isoformat(),
            "config_hash": self.config.digest(),
            "counts": (manifest or {}).get("counts"),
            "exit_code": exit_code,
        }
        try:
            append_history(self.config.report.out_dir, entry)
        except (OutputError, OSError) as exc:
            _error(f"warning: this run is not in the history: {exc}")


def _holds_only(directory: Path, name: str) -> bool:
    return directory.is_dir() and {p.name for p in directory.iterdir()} <= {name}


def _print_run_summary(
    summary: pd.DataFrame, manifest: dict, report: Path, quiet: bool, seconds: float | None
) -> None:
    """The table (or, with --quiet, only the problems), then the headline as the last lines."""
    from pipeline.terminal import headline, problem_lines, results_table

    if quiet:
        for line in problem_lines(manifest):
            _echo(line)
    else:
        width = shutil.get_terminal_size((120, 24)).columns
        _echo(results_table(summary, manifest["config"]["backtest"]["cost_bps"], width))
    for line in headline(summary, manifest, report, seconds):
        _echo(line)


@app.command(cls=PlainUsageCommand)
def download(
    config: RequiredConfigArg,
    set_: SetOption = None,
    quiet: QuietOption = False,
    retry_dead: RetryDeadOption = False,
) -> None:
    """Run the data stage only: fetch what is missing or new into the Parquet cache.

    Prints one line per ticker: rows, first and last date, and fetched / hit / refreshed /
    failed (with the reason). Exits 3 when a ticker failed.
    """
    from pipeline.data.cache import PriceCache
    from pipeline.runner import run_data_stage

    _setup_logging(quiet)
    with exit_codes():
        resolved = _load(config, set_)
        cache = PriceCache(resolved.data.cache_dir)
        with cache.lock():
            report = run_data_stage(resolved, cache, show_progress=not quiet, retry_dead=retry_dead)
    table = pd.DataFrame(
        [
            {
                "ticker": item.ticker,
                "rows": item.rows,
                "first": item.first_date,
                "last": item.last_date,
                "status": item.status,
                "reason": item.reason,
            }
            for item in report.outcomes
        ]
    )
    _echo(_format_table(table))
    counts = report.counts
    _echo(", ".join(f"{value} {name}" for name, value in counts.items()))
    raise typer.Exit(EXIT_TICKER_FAILED if counts.get("failed") else EXIT_OK)


@app.command(cls=PlainUsageCommand)
def validate(config: RequiredConfigArg, set_: SetOption = None) -> None:
    """Check a config and print it resolved: every default spelled out, overrides applied."""
    with exit_codes():
        resolved = _load(config, set_)
    _echo(json.dumps(resolved.to_dict(), indent=2))
    from pipeline.backtest.speed import speed_warnings

    for warning in [*config_warnings(resolved), *speed_warnings(resolved.backtest_settings)]:
        _error(f"warning: {warning}")
    _echo(f"config ok: {len(resolved.data.universe)} tickers, hash {resolved.digest()}")


RunDirArg = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by `pipeline run`.")
]
RunAArg = Annotated[Path, typer.Argument(metavar="RUN_A", help="The baseline run directory.")]
RunBArg = Annotated[Path, typer.Argument(metavar="RUN_B", help="The run compared with it.")]


@app.command(cls=PlainUsageCommand)
def report(run_dir: RunDirArg) -> None:
    """Rebuild report.html, report.md and the charts of a run from its saved results.

    Reads summary.parquet, daily.parquet and manifest.json only: no prices, no model.
    """
    from pipeline.report import build_report

    with exit_codes(), damaged_runs(run_dir):
        written = build_report(run_dir)
    for path in written:
        _echo(str(path))


@app.command(cls=PlainUsageCommand)
def compare(run_a: RunAArg, run_b: RunBArg) -> None:
    """What changed from RUN_A (the baseline) to RUN_B: per-ticker accuracy and returns,
    tickers added, dropped or newly failing, and whether the config or the data changed."""
    from pipeline.report import compare_runs, format_comparison

    with exit_codes(), damaged_runs(run_a, run_b):
        comparison = compare_runs(run_a, run_b)
        text = format_comparison(comparison)
    _echo(text)


RepeatsOption = Annotated[
    int,
    typer.Option(
        "--repeats", min=1, help="Time every configuration this many times; the median counts."
    ),
]


@app.command(cls=PlainUsageCommand)
def tune(
    config: ConfigArg = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=1,
            help="Time this many tickers spread over the universe instead of all of them.",
        ),
    ] = None,
    repeats: RepeatsOption = 1,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Sweep the pool's workers (1..usable CPUs) and chunksize (1, 2, 4, ... up to one chunk
    per worker) on the config's backtest, mark the best, and show what "auto" chooses.

    The data stage runs once first, so every timing starts from a warm cache; the config's
    mode and model are timed as they are. Prints the --set values to use.
    """
    from pipeline.benchmarking.sweep import format_sweep_table, sweep_execution

    _setup_logging(quiet)
    with exit_codes():
        resolved = _load(config, set_)
        result = sweep_execution(resolved, sample, repeats=repeats, show_progress=not quiet)
    _echo(format_sweep_table(result))


@app.command(cls=PlainUsageCommand)
def bench(
    config: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG",
            help="TOML config file, or a packaged config by name: its tickers, dates, model "
            f"and mode are used [default: {DEFAULT_BENCH_CONFIG}, else the packaged article]",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where bench.json and bench.png go, a new directory (see --force). Default: "
            "<report.out_dir>/bench-<UTC time>.",
        ),
    ] = None,
    force: ForceOption = False,
    repeats: RepeatsOption = 1,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Reproduce the article's experiment on this machine: the same per-ticker task run
    sequentially, one Process per ticker, Pool.map, ProcessPoolExecutor and this project's
    pool, each with the plain fit and with the fast path.

    Prints seconds, speedup over sequential and parallel efficiency, checks that every variant
    returns the same results, and writes bench.json and a bar chart, bench.png. Offline, run
    the article's five tickers from CSV files:
    pipeline bench --set data.source=csv --set data.path=DIR
    """
    from pipeline.benchmarking import format_bench_table, run_article_bench, write_bench_outputs

    _setup_logging(quiet)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with exit_codes():
        resolved = _load(config, set_, default=DEFAULT_BENCH_CONFIG)
        default = (resolved.report.out_dir, f"bench-{stamp}")
        with _output_directory(out, default, force, ("bench.json",)) as out_dir:
            result = run_article_bench(resolved, repeats, show_progress=not quiet)
            written = write_bench_outputs(result, out_dir)
    _echo(format_bench_table(result))
    for path in written:
        _echo(str(path))
    if not result.identical:
        _error(f"results differ from the sequential run: {', '.join(result.mismatches)}")
        raise typer.Exit(EXIT_FAILURE)


@app.command(cls=PlainUsageCommand)
def init(
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Where configs/ is written [default: .]"),
    ] = Path(),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite starter configs already there.")
    ] = False,
) -> None:
    """Write starter configs to edit: DIR/configs/demo.toml (offline, synthetic) and
    DIR/configs/article.toml (the article's five tickers on Yahoo Finance).

    Existing files are left alone unless --force. Then, in DIR, `pipeline run` runs the demo
    and `pipeline bench` the article's experiment; paths inside a config are relative to the
    directory pipeline is started from.
    """
    from pipeline.configs import write_starter_configs

    with exit_codes():
        written = write_starter_configs(directory, force=force)
    for path in written:
        _echo(f"wrote {path}")
    where = "" if directory == Path() else f"cd {directory} && "
    demo = written[0].relative_to(directory)
    _echo(f"next: {where}pipeline run   # runs {demo}; edit it to make it yours")


@app.command()
def sweep(
    config: RequiredConfigArg,
    grid: Annotated[
        list[str],
        typer.Option(
            "--grid",
            metavar="KEY=LIST",
            help="One axis of the grid: a features, model or backtest key and a TOML array, "
            "e.g. --grid features.lags=[3,6,9]. Repeatable; every combination runs.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where the sweep's files go, a new directory (see --force). Default: "
            "<report.out_dir>/sweep-<UTC time>.",
        ),
    ] = None,
    force: ForceOption = False,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run every combination of the grid on one shared cache and one executor.

    Writes sweep.csv (one row per configuration: config_hash, the grid values, ok, failed,
    the portfolio's Sharpe, PSR, DSR over every trial of the universe and date range),
    portfolios.parquet (each configuration's daily portfolio log return), sweep.json (n_configs,
    the probability of backtest overfitting by CSCV, s_blocks, the grid) and report.html.
    Each configuration is recorded as a trial in <report.out_dir>/trials.jsonl. Exits 3 when a
    ticker failed in some configuration, 5 when every ticker of every configuration was skipped.
    """
    from pipeline.sweep import grid_points, parse_grid, run_sweep

    _setup_logging(quiet)
    with exit_codes():
        points = grid_points(config, set_ or [], parse_grid(grid))
        base = points[0].config
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        default = (base.report.out_dir, f"sweep-{stamp}")
        with _output_directory(out, default, force, ("sweep.json",)) as out_dir:
            outcome = run_sweep(points, out_dir, show_progress=not quiet)
    shown = outcome.table.sort_values("dsr", ascending=False, na_position="last")
    _echo(_format_table(shown, float_digits=3))
    pbo = outcome.summary["pbo"]
    _echo(
        f"{len(points)} configurations; PBO {'n/a' if pbo is None else f'{pbo:.2f}'}; "
        f"{outcome.summary['n_trials']} trials of this universe and range"
    )
    _echo(f"report: {out_dir / 'report.html'}")
    raise typer.Exit(_sweep_exit_code(outcome.table, outcome.exit_code))


def _sweep_exit_code(table: pd.DataFrame, exit_code: int) -> int:
    """The sweep's own code, or 5 when every ticker of every configuration was skipped."""
    if exit_code or table.empty:
        return exit_code
    return status_exit_code(*(int(table[c].sum()) for c in ("ok", "skipped", "failed")))


def main() -> None:
    """The `pipeline` command: the app, then out without the interpreter's teardown."""
    with terminate_as_interrupt():
        try:
            app()
        except SystemExit as done:
            code = done.code
        else:
            code = 0
    if not isinstance(code, int) and code is not None:
        raise SystemExit(code)  # a message for stderr: Python prints it and exits 1
    exit_now(code or 0)
