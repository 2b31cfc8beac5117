"""Scripts that turn a results directory into the paper's tables and figures (not installed)."""
