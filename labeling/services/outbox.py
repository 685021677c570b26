"""Transactional outbox: task messages are rows written with the change that needs them, sent after commit.

A request never talks to the broker inside its answer's critical path: ``outbox_send`` adds an
``OutboxMessage`` in the caller's transaction, so the message exists exactly when the change does. After the
commit the request tries to publish it (best effort: a broker that is down costs a log line, not a 500), and
beat's ``outbox_drain_task`` every ``OUTBOX_DRAIN_EVERY_S`` (and each worker at start) publishes whatever is
still pending. Drainers lease rows under ``SELECT … FOR UPDATE SKIP LOCKED`` before publishing, so two drainers
never send the same message; a drainer that dies mid-send leaves a lease that expires after
``OUTBOX_LEASE_S``, and its messages are sent again. Delivery is at least once; every task sent this way is
idempotent, and its task id is the row's ``message_id`` (a duplicate is recognisable in the logs).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import KombuError

from labeling.models import OutboxMessage

log = logging.getLogger(__name__)

#: What a broker that is down or unreachable raises on publish (kombu wraps most; sockets may leak through).
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError)
try:  # the Redis client's own connection errors when kombu does not wrap them
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    BROKER_ERRORS += (RedisConnectionError, RedisTimeoutError)
except ImportError:  # another broker: kombu's errors cover it
    pass


def outbox_send(
    task: str, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, delay_s: float = 0.0
) -> OutboxMessage:
    """Queue ``task`` with the current transaction: written now, published after commit (or by a drain).

    ``delay_s``: the task runs no earlier than this many seconds from now (a debounce).
    """
    message = OutboxMessage.objects.create(
        task=task,
        args=list(args),
        kwargs=kwargs or {},
        available_at=timezone.now() + timedelta(seconds=delay_s),
    )
    transaction.on_commit(lambda: _publish_after_commit(message.pk), robust=True)
    return message


def _publish_after_commit(message_id: int) -> None:
    """Best effort right after the commit: the request has its answer either way; beat retries the rest."""
    try:
        outbox_drain(ids=[message_id], retry=False)
    except DatabaseError:  # the database went away after the commit: the row is there, beat sends it
        log.warning("outbox message %s left for the next drain", message_id, exc_info=True)


def _lease(*, ids: Sequence[int] | None, limit: int, token: uuid.UUID) -> list[OutboxMessage]:
    """Lease up to ``limit`` pending rows nobody else holds; returns them, oldest first.

    On PostgreSQL one statement (``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``): a request
    publishing its message after commit pays one round trip for the lease, not a transaction of four."""
    now = timezone.now()
    leased_until = now + timedelta(seconds=settings.OUTBOX_LEASE_S)
    if db.vendor == "postgresql":
        table = db.ops.quote_name(OutboxMessage._meta.db_table)
        only = "AND id = ANY(%s)" if ids is not None else ""
        sql = (
            f"UPDATE {table} SET leased_until = %s, lease_token = %s, attempts = attempts + 1 "
            f"WHERE id IN (SELECT id FROM {table} WHERE sent_at IS NULL "
            f"AND (leased_until IS NULL OR leased_until < %s) {only} "
            f"ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *"
        )
        params: list[Any] = [leased_until, token, now, *([list(ids)] if ids is not None else []), limit]
        return sorted(OutboxMessage.objects.raw(sql, params), key=lambda m: m.pk)
    with transaction.atomic():
        pending = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
            Q(leased_until__isnull=True) | Q(leased_until__lt=now), sent_at__isnull=True
        )
        if ids is not None:
            pending = pending.filter(pk__in=list(ids))
        leased = list(pending.order_by("pk").values_list("pk", flat=True)[:limit])
        if leased:
            OutboxMessage.objects.filter(pk__in=leased).update(
                leased_until=leased_until, lease_token=token, attempts=F("attempts") + 1
            )
    return list(OutboxMessage.objects.filter(pk__in=leased, lease_token=token).order_by("pk"))


def _publish(message: OutboxMessage, *, retry: bool) -> None:
    """Hand one message to the broker by task name (routes apply; the web process need not import the task).

    Every task sent through the outbox ignores its result: no result-backend subscription on the way.
    ``retry=False`` (a request, after its commit) fails at once when the broker is down: kombu would otherwise
    spend its connect timeout (``broker_connection_timeout``, 4 s) and intervals re-connecting, about 6 s of
    the request for every reading while the broker is gone. It publishes on the thread's kept connection
    (``_request_connection``), tried once more on a fresh one when the kept one fails (gone stale).
    """
    countdown = max(0.0, (message.available_at - timezone.now()).total_seconds())
    options: dict[str, Any] = {
        "args": message.args,
        "kwargs": message.kwargs,
        "task_id": str(message.message_id),
        "countdown": countdown or None,
        "retry": retry,
        "ignore_result": True,
    }
    if retry:
        current_app.send_task(message.task, **options)
        return
    while True:  # at most twice: a kept connection may have gone stale (a broker restart), a fresh one not
        connection, reused = _request_connection()
        try:
            current_app.send_task(message.task, connection=connection, **options)
            return
        except BROKER_ERRORS:
            _request_connection_drop()
            if not reused:
                raise


#: Per thread (web threads, worker processes): the broker connection that requests publish on, kept between
#: requests (opening one per reading cost ~20 ms under load); with no connect retries (``_publish``).
_kept = threading.local()


def _request_connection() -> tuple[Any, bool]:
    """This thread's publishing connection and whether it was kept from before (else it is new)."""
    kept, owner = getattr(_kept, "connection", None), (os.getpid(), current_app.conf.broker_write_url)
    if kept is not None and _kept.owner == owner:  # not one inherited through a fork, nor of another broker
        return kept, True
    _request_connection_drop()
    connection = current_app.connection_for_write()
    connection.transport_options = {**connection.transport_options, "max_retries": 0}
    _kept.connection, _kept.owner = connection, owner
    return connection, False


def _request_connection_drop() -> None:
    """Forget this thread's publishing connection (after a broker error): the next publish opens a new one."""
    kept, _kept.connection = getattr(_kept, "connection", None), None
    if kept is not None and _kept.owner[0] == os.getpid():
        try:
            kept.release()
        except Exception:  # a broken connection may fail to close; it is dropped either way
            log.debug("closing a broken broker connection failed", exc_info=True)


def outbox_drain(*, ids: Sequence[int] | None = None, limit: int = 500, retry: bool = True) -> int:
    """Publish pending messages (all, or only ``ids``); returns how many the broker accepted.

    Stops at the first broker failure and releases the rest of its lease, so a broker that is down costs one
    failed publish per drain. ``retry``: let kombu retry a publish briefly (beat) or fail at once (a request).
    """
    token = uuid.uuid4()
    messages = _lease(ids=ids, limit=limit, token=token)
    leased = [message.pk for message in messages]
    sent = 0
    for message in messages:
        try:
            _publish(message, retry=retry)
        except BROKER_ERRORS as exc:
            OutboxMessage.objects.filter(pk__in=leased, lease_token=token, sent_at__isnull=True).update(
                leased_until=None, lease_token=None
            )
            OutboxMessage.objects.filter(pk=message.pk).update(
                last_error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            log.warning("broker unavailable, %d outbox messages left pending: %s", len(leased) - sent, exc)
            break
        OutboxMessage.objects.filter(pk=message.pk, lease_token=token).update(
            sent_at=timezone.now(), leased_until=None, last_error=""
        )
        sent += 1
    return sent


def outbox_prune(*, keep_days: float | None = None) -> int:
    """Delete messages sent more than ``keep_days`` (default OUTBOX_KEEP_DAYS) ago; returns how many."""
    days = settings.OUTBOX_KEEP_DAYS if keep_days is None else keep_days
    before = timezone.now() - timedelta(days=days)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=before).delete()
    return deleted


def outbox_pending_count() -> int:
    """How many messages wait for the broker (a health figure)."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()
