"""Plots (matplotlib, PNG): thin layers over the pure-PyTorch core."""
