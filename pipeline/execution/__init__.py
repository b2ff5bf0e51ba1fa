"""Executors: run the same per-ticker task serially, on a process pool, or on Dask."""
