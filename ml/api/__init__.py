"""HTTP for the model registry: training runs, model versions, policies, AI pre-reads."""
