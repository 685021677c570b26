"""Django admin: browse everything; readings and audit events are read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from labeling import models


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
class StudyAdmin(admin.ModelAdmin):
    list_display = ["study_uid", "modality", "patient_id", "source", "created_at"]
    search_fields = ["study_uid", "patient_id"]


@admin.register(models.Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["label", "project", "study", "is_gold"]
    list_filter = ["project", "is_gold"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
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
