"""Tables of the labeling domain. Writes go through ``labeling.services``; readings are immutable."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labeling.conditions import AIDED, CONDITIONS, UNAIDED, condition_label, study_conditions


class ImmutableError(Exception):
    """An attempt to change or delete a row that is immutable by design."""


class GradingScheme(models.Model):
    """A versioned grading scheme, loaded from ``labeling/schemes/*.yaml``; a version is never rewritten."""

    name = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    modality = models.CharField(max_length=8)
    definition = models.JSONField()
    content_hash = models.CharField(max_length=64)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="scheme_name_version_unique")]
        ordering = ["name", "version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def parsed(self) -> Any:
        """The parsed scheme, shared by every row of the same (name, version, content) in this process: a
        version is never rewritten, so each request reuses one parse and its computed form."""
        from labeling.schemes import Scheme

        cached = getattr(self, "_parsed", None)
        if cached is None:
            key = (self.name, self.version, self.content_hash)
            cached = _PARSED_SCHEMES.get(key) if self.content_hash else None
            if cached is None:
                cached = Scheme.from_definition(self.definition)
                if self.content_hash:
                    _PARSED_SCHEMES[key] = cached
            self._parsed = cached
        return cached


#: (name, version, content hash) → parsed Scheme; grows by one entry per scheme version loaded
_PARSED_SCHEMES: dict[tuple[str, int, str], Any] = {}


def parsed_schemes() -> list[Any]:
    """Every loaded scheme, parsed: one query for their keys, and a second for the definitions of those this
    process has not parsed yet."""
    keys = list(GradingScheme.objects.values_list("pk", "name", "version", "content_hash"))
    parsed = {pk: _PARSED_SCHEMES.get((n, v, h)) if h else None for pk, n, v, h in keys}
    missing = [pk for pk, scheme in parsed.items() if scheme is None]
    for row in GradingScheme.objects.filter(pk__in=missing) if missing else []:
        parsed[row.pk] = row.parsed
    return [parsed[pk] for pk, *_ in keys]


# De-identification on import, per project; "site" takes the DEIDENTIFY_* settings.
DEIDENTIFY_CHOICES = [("site", "site default"), ("on", "on"), ("off", "off (files stored as received)")]
DEIDENTIFY_DATES_CHOICES = [
    ("site", "site default"),
    ("keep", "keep (Retain Longitudinal Temporal Information, Full Dates)"),
    ("shift", "shift by a per-patient offset (Modified Dates)"),
    ("remove", "remove (basic profile)"),
]


class ProjectQuerySet(models.QuerySet["Project"]):
    def active(self) -> ProjectQuerySet:
        """Projects not deleted (a deleted project is kept, hidden, for its readings and audit trail)."""
        return self.filter(deleted_at__isnull=True)


class Project(models.Model):
    """A reading campaign on one grading scheme."""

    class ReaderStudyDesign(models.TextChoices):
        SEQUENTIAL = (
            "sequential",
            "sequential (a case in each condition in turn, at once: the unaided read, then with AI)",
        )
        CROSSOVER = (
            "crossover",
            "crossover (a case in each condition in sessions apart by the washout, order a seeded Latin "
            "square per reader)",
        )

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    scheme = models.ForeignKey(GradingScheme, on_delete=models.PROTECT, related_name="projects")
    readers_per_case = models.PositiveSmallIntegerField(default=3)
    gold_fraction = models.FloatField(default=0.0)
    repeat_fraction = models.FloatField(default=0.0)
    washout_days = models.PositiveIntegerField(default=14)
    washout_cases = models.PositiveIntegerField(default=20)
    adjudication_threshold = models.FloatField(default=0.8)
    contour_disagreement_mm = models.FloatField(
        default=3.0, help_text="slices whose readers' contours differ more than this go to adjudication"
    )
    ai_aided_reads = models.BooleanField(default=False)
    reader_study_design = models.CharField(
        max_length=16,
        choices=ReaderStudyDesign.choices,
        default=ReaderStudyDesign.SEQUENTIAL,
        help_text="how a reader study's reads of a case are scheduled (sequential or crossover)",
    )
    reader_study_conditions = models.JSONField(
        default=list,
        blank=True,
        help_text='the reader study\'s conditions in order (labeling.conditions), e.g. ["t1_only", '
        '"t1_stir"]; empty: unaided and aided when ai_aided_reads is on, else no reader study',
    )
    readers_may_adjudicate_own_cases = models.BooleanField(
        default=False,
        help_text="let an adjudicator decide items of cases they read themselves (off: blinding; audited)",
    )
    # De-identification on import (PS3.15 Annex E basic profile); "site" takes the DEIDENTIFY_* settings.
    deidentify = models.CharField(
        max_length=8,
        choices=DEIDENTIFY_CHOICES,
        default="site",
        help_text="de-identify imported studies (PS3.15 Annex E basic profile)",
    )
    deidentify_dates = models.CharField(
        max_length=8,
        choices=DEIDENTIFY_DATES_CHOICES,
        default="site",
    )
    deidentify_clean_descriptors = models.BooleanField(
        null=True, blank=True, default=None, help_text="Clean Descriptors Option; empty: site default"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="soft deletion: hidden from lists and closed to new work since then"
    )
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_fraction__gte=0, gold_fraction__lte=1), name="project_gold_fraction_range"
            ),
            models.CheckConstraint(
                condition=Q(repeat_fraction__gte=0, repeat_fraction__lte=1),
                name="project_repeat_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(adjudication_threshold__gt=0, adjudication_threshold__lte=1),
                name="project_adjudication_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def study_conditions(self) -> list[str]:
        """The reader study's conditions in order; fewer than two: no reader study, every read unaided."""
        return study_conditions(self.reader_study_conditions or (), self.ai_aided_reads)


class Membership(models.Model):
    """A user's role in a project; a user may hold several roles in one project."""

    class Role(models.TextChoices):
        READER = "reader"
        ADJUDICATOR = "adjudicator"
        ADMIN = "admin"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user", "role"], name="membership_unique_role")
        ]
        ordering = ["project_id", "user_id", "role"]

    def __str__(self) -> str:
        return f"{self.user} {self.role} in {self.project}"


class Study(models.Model):
    """A DICOM study, referenced by UID; the pixels stay in the DICOM store."""

    study_uid = models.CharField(max_length=64, unique=True)
    patient_id = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16)
    description = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="DICOM store the study came from")
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who first registered or imported it: a project admin sees only theirs and their projects'",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.study_uid


class StudyDeidentification(models.Model):
    """What de-identifying a study on import replaced: the original identifiers behind its pseudonyms.

    Read only by site staff, through an audited endpoint (``labeling.services.deidentification``).
    """

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="deidentification")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="deidentifications"
    )
    scope = models.CharField(max_length=32, help_text="pseudonym scope: project:<id> or site")
    profile = models.JSONField(default=dict, help_text="the options applied (no secret)")
    original_study_uid = models.CharField(max_length=64)
    original_patient_id = models.CharField(max_length=64, blank=True)
    original_patient_name = models.CharField(max_length=324, blank=True)
    date_shift_days = models.IntegerField(null=True, blank=True, help_text="dates moved back by (shift)")
    uids = models.JSONField(default=dict, help_text="pseudonymous UID → original UID")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "original_study_uid"], name="deid_unique_original")
        ]

    def __str__(self) -> str:
        return f"de-identification of {self.study}"


class SeriesQuerySet(models.QuerySet["Series"]):
    def images(self) -> SeriesQuerySet:
        """Image series only: what readers grade and viewers show (not SEG objects derived from them)."""
        return self.filter(source_series__isnull=True).exclude(modality=Series.SEG)


class Series(models.Model):
    """A series of a study: an image series, or a DICOM SEG that segments one (``source_series``)."""

    SEG = "SEG"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16)
    source_series = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="segmentations",
        help_text="for a SEG: the image series of the same study it segments",
    )
    description = models.CharField(max_length=200, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    pixel_spacing_mm = models.JSONField(null=True, blank=True)
    slice_thickness_mm = models.FloatField(null=True, blank=True)
    orientation = models.JSONField(null=True, blank=True, help_text="ImageOrientationPatient")

    objects = SeriesQuerySet.as_manager()

    class Meta:
        ordering = ["study_id", "id"]
        verbose_name_plural = "series"

    def __str__(self) -> str:
        return f"{self.description or self.modality} {self.series_uid}"


class Instance(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    slice_index = models.PositiveIntegerField(help_text="0-based position along the slice normal")
    position = models.JSONField(null=True, blank=True, help_text="ImagePositionPatient, mm")

    class Meta:
        ordering = ["series_id", "slice_index"]
        constraints = [
            models.UniqueConstraint(fields=["series", "slice_index"], name="instance_series_slice_unique")
        ]

    def __str__(self) -> str:
        return self.sop_uid


class Case(models.Model):
    """What a reader opens: one MRI study (T1 + STIR) or one CT, within one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cases")
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="cases")
    label = models.CharField(max_length=100, blank=True, help_text="pseudonymous name shown to readers")
    is_gold = models.BooleanField(default=False)
    reference = models.JSONField(
        null=True, blank=True, help_text="known truth as reading values; never shown to readers"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "study"], name="case_project_study_unique")]

    def __str__(self) -> str:
        return self.label or f"case {self.pk}"


def new_assignment_key() -> str:
    """An opaque, unguessable name for one assignment (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


class Assignment(models.Model):
    """One reader's session on one case. Repeat sessions open after a washout (days and other cases).

    Readers reach their assignments only by ``key``, never by the case's id, label or study UID: a blinded
    repeat of a case has a key (and DICOM UIDs, ``labeling.dicom.pseudonyms``) of its own, so nothing in what
    a reader addresses or receives ties it to the earlier read.
    """

    class Status(models.TextChoices):
        OPEN = "open"
        IN_PROGRESS = "in_progress"
        SUBMITTED = "submitted"
        CANCELLED = "cancelled"

    key = models.CharField(
        max_length=32,
        unique=True,
        default=new_assignment_key,
        editable=False,
        help_text="the opaque name readers address the assignment by",
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    session = models.PositiveSmallIntegerField(default=1)
    condition = models.CharField(
        max_length=32,
        default=UNAIDED,
        help_text="the reader-study condition of this read (labeling.conditions): what the reader is served",
    )
    aided = models.BooleanField(
        default=False, help_text="the read is served the AI pre-read (follows from the condition)"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    order_key = models.BigIntegerField(default=0, help_text="random worklist order, fresh per session")
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="repeats",
        help_text="the earlier session this repeat waits for",
    )
    washout_days = models.PositiveIntegerField(default=0)
    washout_cases = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="a repeat opens no earlier: set when the previous session is submitted",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order_key", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "reader", "session", "condition"],
                name="assignment_case_reader_session_condition_unique",
            )
        ]
        indexes = [models.Index(fields=["reader", "status", "order_key"])]

    def __str__(self) -> str:
        return f"{self.reader} on {self.case} (session {self.session})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # ``aided`` follows the condition; an "aided=True" without a condition (the older way) means "aided"
        if self.condition == UNAIDED and self.aided:
            self.condition = AIDED
        self.aided = CONDITIONS[self.condition].ai if self.condition in CONDITIONS else self.aided
        super().save(*args, **kwargs)

    @property
    def condition_label(self) -> str:
        """The condition in the reader's words ("T1 only", "AI-aided")."""
        return condition_label(self.condition)


class Draft(models.Model):
    """A reader's work in progress on an assignment, kept server-side so a reload loses nothing."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="draft")
    values = models.JSONField(default=list)
    contours = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"draft of assignment {self.assignment_id}"


class ImmutableQuerySet(models.QuerySet[Any]):
    """Rows of a finished reading: never updated or deleted (a PostgreSQL trigger refuses it as well)."""

    def update(self, **kwargs: Any) -> int:
        raise ImmutableError("readings are immutable; submit a correction instead")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableError("readings are immutable; submit a correction instead")


class ReadingQuerySet(models.QuerySet["Reading"]):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableError("readings are immutable; submit a correction instead")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableError("readings are immutable; submit a correction instead")

    def current(self) -> ReadingQuerySet:
        """Readings no correction has superseded."""
        return self.filter(superseded_by__isnull=True)


class Reading(models.Model):
    """An immutable reading: a value for every item of the scheme's form. Corrections supersede it."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="readings")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="readings")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="readings")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="readings")
    session = models.PositiveSmallIntegerField()
    scheme = models.ForeignKey(GradingScheme, on_delete=models.PROTECT, related_name="readings")
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    reason = models.CharField(max_length=500, blank=True, help_text="why a correction was made")
    duration_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ReadingQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"reading {self.pk} by {self.reader_id} on case {self.case_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ImmutableError("readings are immutable; submit a correction instead")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableError("readings are immutable; submit a correction instead")

    @property
    def superseded(self) -> bool:
        """Has a correction superseded this reading?"""
        return hasattr(self, "superseded_by")


class CalibrationShown(models.Model):
    """A case whose consensus a reader has been shown through calibration: their readings of it are final."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    shown_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reader", "case"], name="calibration_shown_unique")]

    def __str__(self) -> str:
        return f"reader {self.reader_id} saw the consensus of case {self.case_id}"


class ReadingValue(models.Model):
    """One item of a reading at native granularity: joint × region (quadrant, half or joint) × lesion."""

    reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="values")
    joint = models.CharField(max_length=16)
    region = models.CharField(max_length=32)
    lesion = models.CharField(max_length=32)
    value = models.SmallIntegerField()
    rating = models.SmallIntegerField(
        null=True,
        blank=True,
        help_text="the reader's confidence (e.g. 1-5) or probability (0-100) that the lesion is present, "
        "where the scheme asks for one; the value follows from it",
    )

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["reading_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reading", "joint", "region", "lesion"], name="reading_value_item_unique"
            )
        ]

    def __str__(self) -> str:
        rated = "" if self.rating is None else f" (rating {self.rating})"
        return f"{self.joint}/{self.region}/{self.lesion}={self.value}{rated}"


class Contour(models.Model):
    """An open polyline tracing one joint line on one slice, in patient (LPS) millimetres, start → end."""

    reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="contours")
    joint = models.CharField(max_length=16)
    series_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    slice_index = models.PositiveIntegerField()
    points_mm = models.JSONField()
    start_mm = models.JSONField()
    end_mm = models.JSONField()

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["reading_id", "joint", "slice_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["reading", "joint", "series_uid", "slice_index"], name="contour_slice_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.joint} contour on slice {self.slice_index}"


class AuditEvent(models.Model):
    """Who did what, when, from which request. Written by every service that changes state.

    Events form a hash chain (``seq``, ``prev_hash``, ``hash``: ``labeling.services.audit``) that
    ``manage.py audit_verify`` checks, and PostgreSQL refuses to update or delete them (a trigger). The actor
    and project are kept as recorded (no database constraint): deleting a user or a project leaves the
    events, and their hashes, as they were.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    action = models.CharField(max_length=64)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    seq = models.PositiveBigIntegerField(null=True, unique=True, help_text="position in the hash chain")
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "-id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"


class ConsensusRun(models.Model):
    """One consensus fit for one project and lesion type, reproducible from its input rows.

    A full fit is immutable until readings arrive: an incremental refit then updates the current run in place
    (the changed items' posteriors, the readers' matrices, ``watermark``, ``n_incremental``), until the next
    full fit replaces it.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="consensus_runs")
    lesion = models.CharField(max_length=32)
    scheme = models.ForeignKey(GradingScheme, on_delete=models.PROTECT, related_name="+")
    model = models.CharField(max_length=16)
    data_hash = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict)
    n_classes = models.PositiveSmallIntegerField()
    n_items = models.PositiveIntegerField()
    n_readers = models.PositiveIntegerField()
    n_readings = models.PositiveIntegerField()
    n_clamped = models.PositiveIntegerField(default=0)
    n_iter = models.PositiveIntegerField()
    converged = models.BooleanField()
    log_likelihood = models.FloatField()
    prior = models.JSONField()
    is_current = models.BooleanField(default=True, help_text="the newest run of this project and lesion")
    duration_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Incremental refits (labeling.services.consensus): what the run has seen, and the fit's state
    watermark = models.BigIntegerField(default=0, help_text="the highest reading id the run has seen")
    fingerprint = models.JSONField(
        default=dict, help_text="the current readings up to the watermark, adjudications, gold and parameters"
    )
    n_incremental = models.PositiveIntegerField(
        default=0, help_text="incremental updates since the run's full fit (a scheduled full refit follows)"
    )
    state = models.BinaryField(
        null=True, editable=False, help_text="pattern table and parameters an incremental refit resumes from"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "lesion", "data_hash"], name="consensus_run_data_unique"
            ),
            models.UniqueConstraint(
                fields=["project", "lesion"], condition=Q(is_current=True), name="consensus_run_one_current"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} {self.lesion} consensus #{self.pk}"


class ItemPosterior(models.Model):
    """The consensus of one item (case × joint × region) in one run."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="posteriors")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    joint = models.CharField(max_length=16)
    region = models.CharField(max_length=32)
    posterior = models.JSONField(help_text="P(class) for each class of the lesion")
    label = models.SmallIntegerField()
    max_posterior = models.FloatField()
    entropy = models.FloatField()
    n_readings = models.PositiveIntegerField()
    clamped = models.BooleanField(default=False, help_text="gold or adjudicated: the class was known")

    class Meta:
        ordering = ["run_id", "max_posterior"]
        indexes = [models.Index(fields=["run", "max_posterior"])]
        constraints = [
            models.UniqueConstraint(fields=["run", "case", "joint", "region"], name="item_posterior_unique")
        ]

    def __str__(self) -> str:
        return f"{self.case_id}/{self.joint}/{self.region}: {self.label}"


class ReaderConfusion(models.Model):
    """A reader's estimated confusion matrix in one run, with the expected counts behind it."""

    run = models.ForeignKey(ConsensusRun, on_delete=models.CASCADE, related_name="confusions")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    matrix = models.JSONField(help_text="P(reader says l | truth j), rows j")
    counts = models.JSONField(help_text="expected readings per cell")
    n_reads = models.PositiveIntegerField()
    bias = models.FloatField(null=True, blank=True)
    spread = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "reader_id"]
        constraints = [models.UniqueConstraint(fields=["run", "reader"], name="reader_confusion_unique")]

    def __str__(self) -> str:
        return f"reader {self.reader_id} in run {self.run_id}"


class Adjudication(models.Model):
    """An adjudicator's final class for one item; clamped in the next refit and the gold for models."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="adjudications")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="adjudications")
    joint = models.CharField(max_length=16)
    region = models.CharField(max_length=32)
    lesion = models.CharField(max_length=32)
    value = models.SmallIntegerField()
    reason = models.CharField(max_length=1000)
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # one first decision per item; ``supersedes`` is one-to-one, so the decisions of an item form one
            # chain and exactly one of them is current (two simultaneous first decisions: the second fails)
            models.UniqueConstraint(
                fields=["project", "case", "joint", "region", "lesion"],
                condition=Q(supersedes__isnull=True),
                name="adjudication_one_first_per_item",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id}/{self.joint}/{self.region}/{self.lesion} = {self.value}"


class ImportJob(models.Model):
    """One import of DICOM studies (an upload, a folder or a DICOMweb query) and its progress.

    ``params`` says where the files are (``{"folder": ...}``) or what to ask (``{"url": ..., "filters": ...}``);
    ``report`` holds the ImportReport once finished. Runs are idempotent: study UIDs already known are skipped.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="import_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(
        max_length=500, help_text="what was imported, in words: an upload, a folder, a URL"
    )
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="files (or instances) to import")
    done = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True, help_text="[{path, reason}] of rejected files")
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="kept fresh by the worker running the job; stale when it died"
    )
    attempts = models.PositiveIntegerField(default=0, help_text="times a worker claimed the job")
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="when the job's task was last queued (its creation or a recovery)"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"


class ConsensusRefitState(models.Model):
    """Where a project's consensus refit stands, so that a refit whose worker died is started again.

    ``covered_until``: readings and adjudications created up to this time are in the current runs.
    ``heartbeat_at`` is kept fresh while a worker refits (None when none is on it); ``dispatched_at`` is the
    last time the recovery queued a refit. No write per reading: newer readings are found by their time.
    """

    project = models.OneToOneField(
        Project, primary_key=True, on_delete=models.CASCADE, related_name="consensus_refit_state"
    )
    covered_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"consensus refit state of {self.project}"


class OutboxMessage(models.Model):
    """A task message written in the same transaction as the change that needs it (transactional outbox).

    A drainer leases pending rows (``leased_until``, ``lease_token``), publishes them with ``message_id`` as
    the task id and marks them sent; a broker that is down leaves them pending for the next drain (beat, or
    right after the next commit). Delivery is at least once: the tasks are idempotent.
    """

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.CharField(max_length=200, help_text="the Celery task's registered name")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    available_at = models.DateTimeField(default=timezone.now, help_text="the task runs no earlier")
    created_at = models.DateTimeField(auto_now_add=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=Q(sent_at__isnull=True), name="outbox_pending"),
            models.Index(fields=["sent_at"], name="outbox_sent_at"),
        ]

    def __str__(self) -> str:
        return f"outbox {self.pk} {self.task} ({'sent' if self.sent_at else 'pending'})"


class ContourConsensus(models.Model):
    """The consensus joint line of one case, joint and slice (derived from the current contours)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="contour_consensus")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    joint = models.CharField(max_length=16)
    slice_index = models.PositiveIntegerField()
    series_uid = models.CharField(max_length=64)
    points_mm = models.JSONField()
    n_contours = models.PositiveIntegerField()
    disagreement_mm = models.FloatField(
        help_text="mean distance of the farthest reader's contour to the consensus"
    )
    flagged = models.BooleanField(default=False, help_text="readers disagree beyond the project's threshold")
    reader_distances = models.JSONField(default=list, help_text="[reader id, session, mean mm, p95 mm]")
    data_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["case_id", "joint", "slice_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "case", "joint", "slice_index"], name="contour_consensus_slice_unique"
            )
        ]

    def __str__(self) -> str:
        return f"case {self.case_id} {self.joint} slice {self.slice_index}"


class ContourConsensusMark(models.Model):
    """How far a project's contour consensus has read: the readings up to ``watermark`` are in it.

    ``readings`` fingerprints the project's current readings up to the watermark (count, sum and sum of squares
    of their ids), so a reading that commits below the watermark after a refit (its id was drawn before one
    seen there), or the correction of one, is noticed, and the next refit reads every contour again.
    """

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, primary_key=True, related_name="contour_consensus_mark"
    )
    watermark = models.BigIntegerField(default=0)
    readings = models.JSONField(default=list, help_text="[count, sum of ids, sum of squared ids]")
    disagreement_mm = models.FloatField(
        null=True,
        help_text="the project's threshold the slices were flagged with (a change flags them again)",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"contour consensus of project {self.project_id} up to reading {self.watermark}"


class ReaderContourReliability(models.Model):
    """How far a reader's contours lie from the consensus, over slices traced by several readers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="contour_reliability")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    n_contours = models.PositiveIntegerField()
    mean_mm = models.FloatField()
    p95_mm = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "reader"], name="contour_reliability_unique")
        ]

    def __str__(self) -> str:
        return f"reader {self.reader_id}: {self.mean_mm:.2f} mm"


class ReaderStudyAnalysis(models.Model):
    """One MRMC analysis of a project's aided vs unaided reads against one reference standard.

    Keyed by the hash of its inputs (the reads, the reference, the analysis version), like a consensus run:
    unchanged data reuse the stored analysis; ``result`` is the JSON the API serves.
    """

    class Reference(models.TextChoices):
        PHANTOM = "phantom", "the phantoms' ground truth (each case's reference values)"
        ADJUDICATED = "adjudicated", "the adjudicators' current decisions"
        CONSENSUS = (
            "consensus",
            "the Dawid-Skene consensus of the other readers' unaided reads (never the reader's own)",
        )

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reader_studies")
    reference = models.CharField(max_length=16, choices=Reference.choices)
    data_hash = models.CharField(max_length=64)
    result = models.JSONField()
    duration_s = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "reference", "data_hash"], name="reader_study_analysis_data_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project} reader study ({self.reference}) #{self.pk}"


class AgreementReport(models.Model):
    """The newest agreement report of a project at one bootstrap size (``labeling.services.agreement``).

    Computed on the worker, never in a web request (its bootstraps take seconds on a large project). One row
    per project and ``n_boot``, replaced by a report of newer data; ``data_hash`` fingerprints the inputs it
    was computed from, so the API can say whether it is current; ``as_of`` is when those inputs were read.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agreement_reports")
    n_boot = models.PositiveIntegerField()
    data_hash = models.CharField(max_length=64)
    as_of = models.DateTimeField()
    result = models.JSONField()
    duration_s = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "n_boot"], name="agreement_report_project_n_boot_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project} agreement report (n_boot {self.n_boot}, as of {self.as_of:%Y-%m-%d %H:%M})"


class ContourAdjudication(models.Model):
    """An adjudicator's final joint line of one case, joint and slice where readers' contours disagreed: a
    reader's line, the consensus line or one drawn by the adjudicator. The gold line for contour models."""

    class Source(models.TextChoices):
        READER = "reader", "one reader's line"
        CONSENSUS = "consensus", "the consensus line"
        DRAWN = "drawn", "drawn by the adjudicator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="contour_adjudications")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="contour_adjudications")
    joint = models.CharField(max_length=16)
    series_uid = models.CharField(max_length=64)
    slice_index = models.PositiveIntegerField()
    source = models.CharField(max_length=16, choices=Source.choices)
    source_reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    points_mm = models.JSONField(help_text="the final open polyline in patient (LPS) mm, start → end")
    reason = models.CharField(max_length=1000)
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # as for Adjudication: the decisions on one slice form one chain, exactly one of them current
            models.UniqueConstraint(
                fields=["project", "case", "joint", "slice_index"],
                condition=Q(supersedes__isnull=True),
                name="contour_adjudication_one_first_per_slice",
            )
        ]

    def __str__(self) -> str:
        return f"case {self.case_id} {self.joint} slice {self.slice_index}: {self.source}"
