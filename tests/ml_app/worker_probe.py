"""A task for tests only, loaded into a real worker with ``--include``: what a pool process computes with."""

from config.celery import app


@app.task(name="tests.torch_threads")
def torch_threads() -> int:
    """torch's intra-op threads in the pool process that runs this task."""
    import torch

    return torch.get_num_threads()
