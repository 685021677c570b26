"""Django admin for the model registry (runs and versions are changed through the API, not here)."""

from __future__ import annotations

from django.contrib import admin

from labeling.admin import ReadOnlyAdmin
from ml import models


@admin.register(models.TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "kind", "state", "trigger", "attempts", "created_at", "finished_at"]
    list_filter = ["kind", "state"]


@admin.register(models.ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "kind", "version", "status", "created_at", "promoted_at"]
    list_filter = ["kind", "status"]


@admin.register(models.DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "kind", "content_hash", "created_at"]


@admin.register(models.TrainingPolicy)
class TrainingPolicyAdmin(admin.ModelAdmin):
    list_display = ["project", "kind", "schedule_enabled", "hour_utc", "min_new_items"]
