"""The audit trail: one AuditEvent per write, with the request it came from, in a hash chain.

Each event carries its place in the chain (``seq``), the hash of the event before it (``prev_hash``) and its
own ``hash``: an HMAC-SHA256 (Django's ``salted_hmac``, keyed by ``SECRET_KEY``) of its content and
``prev_hash``. Editing an event breaks its own hash, deleting one leaves a gap in ``seq``, inserting one
breaks the link to it; ``audit_verify`` names the first broken link. Events are appended one at a time (a
transaction-scoped advisory lock on PostgreSQL; SQLite's write transactions are serial anyway).

Lock order: the chain lock is the last lock a transaction takes. Row locks come first and lock only their row
``FOR NO KEY UPDATE`` (``select_for_update(of=("self",), no_key=True)``), so that they never block another
transaction's foreign-key checks; and the write's own foreign-key checks, which PostgreSQL defers to COMMIT, run
before the chain lock is taken (``SET CONSTRAINTS ALL IMMEDIATE``). Otherwise a transaction holding the chain
lock waits at COMMIT for a row that a second transaction holds while it waits for the chain lock: a deadlock
(a reading submit against a consensus refit, tests/labeling/test_lock_order.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.ipv6 import clean_ipv6_address

from labeling.middleware import current_request
from labeling.models import AuditEvent, Project

GENESIS = "0" * 64
_CHAIN_LOCK = 0x436F6E636F7264  # "Concord": the advisory lock that serialises appends


def audit_hash(event: AuditEvent) -> str:
    """The HMAC of an event's content and the hash before it."""
    content = {
        "seq": event.seq,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_id,
        "action": event.action,
        "project": event.project_id,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "data": event.data,
        "request_id": event.request_id,
        "ip": event.ip,
        "prev": event.prev_hash,
    }
    message = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return salted_hmac("concord.audit.chain", message, algorithm="sha256").hexdigest()


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    target: models.Model,
    project: Project | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event for ``action`` on ``target``; call inside the write's transaction."""
    context = current_request.get()
    ip = context.ip
    if ip and ":" in ip:
        ip = clean_ipv6_address(ip)  # as the database will return it
    # no savepoint inside the caller's transaction (two round trips fewer, one of them under the chain lock):
    # an error here fails the whole write, as it must
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            last = _lock_chain()
        else:
            last = AuditEvent.objects.exclude(seq=None).order_by("-seq").values_list("seq", "hash").first()
        seq = (last[0] or 0) + 1 if last else 1
        event = AuditEvent(
            created_at=timezone.now(),
            actor=actor if actor is not None and actor.is_authenticated else None,
            action=action,
            project=project,
            object_type=target._meta.label_lower,
            object_id=str(target.pk),
            # as the database will return it (string keys, JSON types only), so the hash can be recomputed
            data=json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder)),
            request_id=context.request_id,
            ip=ip,
            seq=seq,
            prev_hash=last[1] if last else GENESIS,
        )
        event.hash = audit_hash(event)
        event.save(force_insert=True)
    return event


def _lock_chain() -> tuple[int | None, str] | None:
    """Take the chain lock and read the chain's last (seq, hash), in one round trip (PostgreSQL).

    The chain lock is held until COMMIT and every audited write waits for it, so the statements between
    taking it and the commit are as few as they can be. First the write's deferred foreign-key checks (and
    their KEY SHARE locks) run, before the chain lock, then they are deferred again for whatever the caller
    writes next; in this order."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED; "
            f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK:d}); "
            f"SELECT seq, hash FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
        )
        while cursor.nextset():  # on to the last statement's rows
            pass
        row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else None


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    seq: int | None
    reason: str


def audit_chain_breaks() -> Iterator[ChainBreak]:
    """Walk the chain in order; yield where it breaks (the first break is the one to look at)."""
    expected_seq, expected_prev = 1, GENESIS
    for event in AuditEvent.objects.order_by("seq", "id").iterator(chunk_size=2000):
        if event.seq is None:
            yield ChainBreak(event.pk, None, "has no place in the chain: inserted outside the audit service")
            continue
        if event.seq != expected_seq:
            missing = (
                f"{expected_seq}" if event.seq == expected_seq + 1 else f"{expected_seq}..{event.seq - 1}"
            )
            yield ChainBreak(event.pk, event.seq, f"the event(s) at seq {missing} before it were deleted")
        elif event.prev_hash != expected_prev:
            yield ChainBreak(
                event.pk, event.seq, "does not link to the event before it: inserted or relinked"
            )
        if audit_hash(event) != event.hash:
            yield ChainBreak(event.pk, event.seq, "its content does not match its hash: edited")
        expected_seq, expected_prev = event.seq + 1, event.hash
