"""ohgw_bench: a benchmark for One-Shot Hyper-Gradient Warm-Starts in multi-fidelity HPO."""

__version__ = "0.1.0"
