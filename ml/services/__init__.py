"""The model registry's services, one module per topic (views and tasks stay thin):

* ``training``: start, execute (resumably, on the gpu queue), cancel, recover runs whose message was lost;
* ``snapshots``: freeze a project's labels for a model kind (``ml.data.snapshot`` format);
* ``promotion``: evaluate on gold, register, promote (or roll back by hand);
* ``prereads``: AI pre-reads of a promoted version;
* ``schedules``: training policies and the nightly check.

Reads live in ``ml.selectors``.
"""

from __future__ import annotations

import math
from typing import Any


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
