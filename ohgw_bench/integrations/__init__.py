"""OHGW inside other HPO libraries' loops: ``optuna`` (a sampler wrapper) and ``syne_tune`` (a
scheduler wrapper). Each module imports its library when it is imported, never before."""
