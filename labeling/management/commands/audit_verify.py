"""Check the audit log's hash chain; report the first broken link (exit status 1) or that it is intact."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from labeling.models import AuditEvent
from labeling.services.audit import audit_chain_breaks


class Command(BaseCommand):
    help = "Verify the audit log's hash chain: names the first edited, deleted or inserted event."

    def handle(self, *args: Any, **options: Any) -> None:
        first = next(audit_chain_breaks(), None)
        if first is not None:
            where = f"seq {first.seq}" if first.seq is not None else "no seq"
            raise CommandError(f"audit chain broken at event {first.event_id} ({where}): {first.reason}")
        self.stdout.write(f"audit chain intact: {AuditEvent.objects.count()} events")
