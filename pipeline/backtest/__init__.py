"""The backtest stage: pure per-ticker computation, no network and no disk."""
