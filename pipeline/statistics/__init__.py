"""Statistics of backtest returns: baselines, bootstrap intervals, PSR/DSR, PBO, trials.

Compute layer: pure functions of arrays and frames, no I/O (METHOD.md, "Baselines",
"Uncertainty", "Selection bias", "Probability of backtest overfitting").
"""
