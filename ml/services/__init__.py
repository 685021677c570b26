"""Every write of the model registry: snapshots, training runs, evaluation and promotion, pre-reads."""
