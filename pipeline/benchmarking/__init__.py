"""Benchmarks a user can run: `pipeline bench` (the article's experiment) and the workload
helpers `pipeline tune` shares with it."""

from pipeline.benchmarking.article import BenchResult, run_article_bench
from pipeline.benchmarking.outputs import format_bench_table, write_bench_outputs

__all__ = ["BenchResult", "format_bench_table", "run_article_bench", "write_bench_outputs"]
