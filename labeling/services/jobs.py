"""What every long-running background job shares: a heartbeat kept fresh from a thread, and the test of life.

Training runs (``ml.services``), import jobs (``labeling.services.ingest``) and consensus refits
(``labeling.services.consensus_recovery``) each keep a ``heartbeat_at`` column fresh while a worker is on them.
A worker killed with ``kill -9`` stops beating; its job's heartbeat goes stale, and the recovery step of that
job queues it again. The broker would redeliver the killed worker's unacknowledged message only after its
visibility timeout (hours, so that long training runs are not delivered twice), so recovery cannot wait for it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection, models
from django.utils import timezone

log = logging.getLogger(__name__)


def is_alive(heartbeat_at: datetime | None, *, stale_after_s: float, now: datetime | None = None) -> bool:
    """Whether a heartbeat is recent enough that its worker is taken to be working."""
    if heartbeat_at is None:
        return False
    return (now or timezone.now()) - heartbeat_at < timedelta(seconds=stale_after_s)


class Heartbeat:
    """Keep one row's ``heartbeat_at`` fresh from a thread while this process works on it.

    Snapshots, data caching, evaluation and imports report no progress for minutes; without this, a second
    delivery of the task (a broker redelivery or a recovery) would take a busy worker for a dead one and do the
    same job twice. The thread dies with the process, so a killed worker's heartbeat does go stale. ``where``
    narrows the update (e.g. ``state="running"``): a job finished meanwhile is not touched.
    """

    def __init__(self, model: type[models.Model], pk: Any, *, every_s: float, **where: Any) -> None:
        self.model, self.pk, self.every_s, self.where = model, pk, every_s, where
        self.stopped = threading.Event()
        name = f"heartbeat-{model._meta.model_name}-{pk}"
        self.thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(self.every_s):
                try:
                    self.model._default_manager.filter(pk=self.pk, **self.where).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # a briefly unreachable database: the next beat tries again
                    log.warning("heartbeat of %s %s failed", self.model.__name__, self.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection
