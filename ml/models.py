"""The model registry: dataset snapshots, training runs, model versions, AI pre-reads, training policies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Case, Project


class ModelKind(models.TextChoices):
    CONTOUR = "contour"
    LESIONS = "lesions"
    CTGRADE = "ctgrade"


class DatasetSnapshot(models.Model):
    """The cases and labels one run trains on, frozen at its start as a folder with a manifest.

    Identified by the hash of its manifest, so the same data gives the same snapshot and a run can be
    repeated exactly.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="snapshots")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    content_hash = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    summary = models.JSONField(default=dict)
    consensus_runs = models.JSONField(default=dict, help_text="lesion -> ConsensusRun id")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "content_hash"], name="snapshot_content_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} snapshot {self.content_hash[:12]}"


class TrainingRun(models.Model):
    """One training run of one model kind; at most one queued or running per project and kind."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual"
        SCHEDULE = "schedule"
        DEMO = "demo"

    ACTIVE = (State.QUEUED, State.RUNNING)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    config = models.JSONField(default=dict)
    progress = models.JSONField(default=dict, help_text="epoch, epochs, step, loss, metrics, fraction")
    log = models.TextField(blank=True)
    history = models.JSONField(
        default=list, blank=True, help_text="one {epoch, loss, metrics[, phase]} per finished epoch, in order"
    )
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0, help_text="deliveries to a worker (> 1 after a crash)")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last sign of life of the worker on it"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(state__in=["queued", "running"]),
                name="training_run_one_active_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} run #{self.pk} ({self.state})"

    @property
    def checkpoint_dir(self) -> str:
        return str(settings.ML_WEIGHTS_DIR / "runs" / f"run-{self.pk}")


class ModelVersion(models.Model):
    """A trained model: a candidate until it reaches its kind's promotion floor and beats the promoted one on
    adjudicated gold."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        PROMOTED = "promoted"
        RETIRED = "retired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    checkpoint_dir = models.CharField(max_length=500)
    card = models.JSONField(default=dict)
    gold_metrics = models.JSONField(default=dict)
    comparison = models.JSONField(
        default=dict, help_text="against the version promoted when this one was evaluated"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "kind", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["project", "kind"], condition=Q(status="promoted"), name="model_version_one_promoted"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} ({self.status})"


class Prediction(models.Model):
    """An AI pre-read of one case by one model version."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="predictions")
    output = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["model_version", "case"], name="prediction_unique")]

    def __str__(self) -> str:
        return f"{self.model_version} on case {self.case_id}"


class TrainingPolicy(models.Model):
    """When a project retrains a model kind on its own, and how a candidate must compare to be promoted."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_policies")
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    schedule_enabled = models.BooleanField(default=False)
    hour_utc = models.PositiveSmallIntegerField(default=2, help_text="nightly check at this hour")
    min_new_items = models.PositiveIntegerField(
        default=100, help_text="retrain only when this many new adjudicated or confident items exist"
    )
    max_output_drop = models.FloatField(
        default=0.02, help_text="promotion refused when any output's metric drops by more than this"
    )
    promotion_floor = models.FloatField(
        null=True,
        blank=True,
        help_text="the least gold metric a model of this kind needs to be promoted (contour: fraction of lines "
        "within 2.76 mm, lesions: every AUC, ctgrade: QWK); empty: the ML_FLOOR_<KIND> setting",
    )
    config = models.JSONField(default=dict, blank=True, help_text="training configuration overrides")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "kind"], name="training_policy_unique")]

    def __str__(self) -> str:
        return f"{self.project} {self.kind} policy"
