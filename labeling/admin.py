"""Django admin: browse everything. Studies, cases, assignments, readings and audit events are read-only
(the API's services change them, with their checks); every write the admin site does make (projects,
memberships, users, training policies) is also an audit event, from the admin's own log entry."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db.models.signals import post_save
from django.http import HttpRequest

from labeling import models
from labeling.services.audit import audit_record


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.GradingScheme)
class GradingSchemeAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "modality", "loaded_at"]


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "scheme", "readers_per_case", "gold_fraction", "repeat_fraction", "created_at"]
    inlines = [MembershipInline]


@admin.register(models.Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ["study_uid", "modality", "patient_id", "source", "created_at"]
    search_fields = ["study_uid", "patient_id"]


@admin.register(models.Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["label", "project", "study", "is_gold"]
    list_filter = ["project", "is_gold"]


@admin.register(models.Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "case", "reader", "session", "status", "submitted_at"]
    list_filter = ["project", "status", "session"]


class ValueInline(admin.TabularInline):
    model = models.ReadingValue
    extra = 0
    can_delete = False
    readonly_fields = ["joint", "region", "lesion", "value"]


@admin.register(models.Reading)
class ReadingAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "case", "reader", "session", "supersedes", "created_at"]
    list_filter = ["project"]
    inlines = [ValueInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "object_type", "object_id", "project"]
    list_filter = ["action", "project"]


ADMIN_ACTIONS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


def _admin_write_audited(sender: type[LogEntry], instance: LogEntry, created: bool, **_: Any) -> None:
    """Every admin-site write (Django logs each one as a LogEntry) becomes an audit event in the chain."""
    if not created:
        return
    object_id = str(instance.object_id or "")
    project = None
    if instance.content_type is not None and instance.content_type.model_class() is models.Project:
        project = models.Project.objects.filter(pk=int(object_id)).first() if object_id.isdigit() else None
    audit_record(
        actor=instance.user,
        action=f"admin.{ADMIN_ACTIONS.get(instance.action_flag, 'write')}",
        target=instance,
        project=project,
        data={
            "model": instance.content_type.model if instance.content_type else "",
            "object_id": object_id,
            "object": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )


post_save.connect(_admin_write_audited, sender=LogEntry, dispatch_uid="admin-writes-audited")
