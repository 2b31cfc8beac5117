"""ohgw_bench: a benchmark for One-Shot Hyper-Gradient Warm-Starts in multi-fidelity HPO.

As a library (docs/library.md): ``ohgw_bench.warm_start(task, config, settings, seed)`` nudges
one config; ``ohgw_bench.integrations.optuna`` and ``ohgw_bench.integrations.syne_tune`` wrap an
Optuna sampler or a Syne Tune scheduler. Importing the package loads none of torch, Optuna
or Syne Tune; each is imported when first used.
"""

from ohgw_bench.library import WarmStarter, check_config, make_task, paired_seed, warm_start

__version__ = "0.1.0"
__all__ = ["WarmStarter", "check_config", "make_task", "paired_seed", "warm_start"]
