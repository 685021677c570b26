"""Model benchmarks: ``python -m ml.bench accuracy|speed|inference`` (issue 6 acceptance, SPEC §7)."""
