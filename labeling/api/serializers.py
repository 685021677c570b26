"""Output serializers: render rows, nothing else. Input serializers live beside their view."""

from __future__ import annotations

from typing import Any

from django.utils.crypto import salted_hmac
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from labeling.dicom.pseudonyms import UidMap
from labeling.models import (
    Assignment,
    AuditEvent,
    Case,
    Contour,
    GradingScheme,
    Membership,
    Project,
    Reading,
    Series,
    Study,
)
from labeling.selectors import roles_of
from labeling.services.identity import assignment_uids, clean_series_descriptions, contours_to_pseudonymous


class SchemeOutput(serializers.ModelSerializer):
    form = serializers.SerializerMethodField()

    class Meta:
        model = GradingScheme
        fields = ["id", "name", "version", "modality", "form", "definition"]

    def get_form(self, scheme: GradingScheme) -> list[dict[str, Any]]:
        return [
            {
                "joint": i.joint,
                "region": i.region,
                "lesion": i.lesion,
                "values": list(i.values),
                "rating": i.rating.as_dict() if i.rating else None,
            }
            for i in scheme.parsed.form_items
        ]


class ProjectOutput(serializers.ModelSerializer):
    scheme: serializers.Field = serializers.StringRelatedField()
    scheme_id = serializers.IntegerField()
    modality = serializers.CharField(
        source="scheme.modality", read_only=True, help_text="DICOM modality of the project's studies (MR, CT)"
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "scheme",
            "scheme_id",
            "modality",
            "readers_per_case",
            "gold_fraction",
            "repeat_fraction",
            "washout_days",
            "washout_cases",
            "adjudication_threshold",
            "contour_disagreement_mm",
            "ai_aided_reads",
            "reader_study_design",
            "readers_may_adjudicate_own_cases",
            "deidentify",
            "deidentify_dates",
            "deidentify_clean_descriptors",
            "created_at",
        ]


class ProjectReaderOutput(serializers.ModelSerializer):
    """What a reader sees of a project: not its study design (repeat fraction, washout, gold, thresholds)."""

    scheme: serializers.Field = serializers.StringRelatedField()
    scheme_id = serializers.IntegerField()

    class Meta:
        model = Project
        fields = ["id", "name", "description", "scheme", "scheme_id", "ai_aided_reads", "created_at"]


def project_output(project: Project, user: Any) -> dict[str, Any]:
    """The full project for staff, admins and adjudicators of it; the reader's view for everyone else."""
    overseer = user.is_staff or roles_of(user=user, project_id=project.pk) & {
        Membership.Role.ADMIN,
        Membership.Role.ADJUDICATOR,
    }
    return dict((ProjectOutput if overseer else ProjectReaderOutput)(project).data)


class MembershipOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    open_assignments = serializers.IntegerField(
        read_only=True,
        default=0,
        help_text="the reader's open or in-progress assignments, cancelled if this reader role is removed",
    )

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "open_assignments", "created_at"]


class MembershipRemoveOutput(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    cancelled_assignments = serializers.IntegerField(help_text="the reader's open assignments now cancelled")


class SeriesOutput(serializers.ModelSerializer):
    n_instances = serializers.SerializerMethodField()

    class Meta:
        model = Series
        fields = ["series_uid", "modality", "description", "frame_of_reference_uid", "n_instances"]

    def get_n_instances(self, series: Series) -> int:
        return len(series.instances.all())


class StudyOutput(serializers.ModelSerializer):
    series = SeriesOutput(many=True)

    class Meta:
        model = Study
        fields = [
            "id",
            "study_uid",
            "patient_id",
            "modality",
            "description",
            "source",
            "series",
            "created_at",
        ]


class CaseOutput(serializers.ModelSerializer):
    study_uid = serializers.CharField(source="study.study_uid")
    # counted by the list's query only (labeling.selectors.case_list); null elsewhere
    n_assignments = serializers.IntegerField(read_only=True, default=None, allow_null=True)
    n_readings = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "label",
            "study_uid",
            "is_gold",
            "reference",
            "n_assignments",
            "n_readings",
            "created_at",
        ]


class CaseBlindedOutput(CaseOutput):
    """A case as an admin or adjudicator who still reads in the project sees it: no gold flag, reference or
    counts of other readers' work."""

    class Meta(CaseOutput.Meta):
        fields = ["id", "label", "study_uid", "created_at"]


class AssignmentAdminOutput(serializers.ModelSerializer):
    reader = serializers.CharField(source="reader.username")
    case_label = serializers.CharField(source="case.label")

    class Meta:
        model = Assignment
        fields = [
            "id",
            "key",
            "case_id",
            "case_label",
            "reader",
            "session",
            "aided",
            "status",
            "previous_id",
            "not_before",
            "started_at",
            "submitted_at",
        ]


def assignment_pseudonym(assignment: Assignment) -> str:
    """The name a reader sees for the case of one assignment: derived from the assignment alone (an HMAC
    keyed by SECRET_KEY), so a blinded repeat of a case looks like a new case, unlike its label or id."""
    return (
        salted_hmac("concord.assignment.label", str(assignment.pk), algorithm="sha256")
        .hexdigest()[:8]
        .upper()
    )


def _reader_uids(assignment: Assignment) -> UidMap:
    """The assignment's UID map, built once per serialised assignment."""
    cached = getattr(assignment, "_reader_uids", None)
    if cached is None:
        cached = assignment_uids(assignment)
        assignment._reader_uids = cached  # type: ignore[attr-defined]
    return cached


class WorklistItemOutput(serializers.ModelSerializer):
    """What a reader sees of an assignment: its opaque ``key`` (the only way readers address it), no session
    number, no gold flag, and neither the case's id nor its label: ``case_label`` is the assignment's own
    pseudonym (blinding; a repeat looks like a new case)."""

    case_label = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["key", "case_label", "status", "aided", "started_at"]

    def get_case_label(self, assignment: Assignment) -> str:
        return assignment_pseudonym(assignment)


class ReaderSeriesOutput(serializers.Serializer):
    """A series as the reader's viewer fetches it: under the assignment's pseudonymous UIDs."""

    series_uid = serializers.CharField()
    modality = serializers.CharField()
    description = serializers.CharField(help_text="the scheme's sequence name (T1, STIR), else empty")
    frame_of_reference_uid = serializers.CharField(allow_blank=True)
    n_instances = serializers.IntegerField()


class AssignmentReaderOutput(WorklistItemOutput):
    """The case data of a reader's assignment: the study and its image series under the assignment's
    pseudonymous UIDs (``/dicomweb/`` serves them), the form to fill in. No case id, label or stored UID."""

    project_id = serializers.IntegerField()
    study_uid = serializers.SerializerMethodField()
    series = serializers.SerializerMethodField()
    scheme = SchemeOutput(source="project.scheme")

    class Meta(WorklistItemOutput.Meta):
        fields = [
            *WorklistItemOutput.Meta.fields,
            "project_id",
            "study_uid",
            "series",
            "scheme",
            "submitted_at",
        ]

    def get_study_uid(self, assignment: Assignment) -> str:
        return _reader_uids(assignment).pseudo(assignment.case.study.study_uid)

    @extend_schema_field(ReaderSeriesOutput(many=True))
    def get_series(self, assignment: Assignment) -> list[dict[str, Any]]:
        uids = _reader_uids(assignment)
        clean = clean_series_descriptions()
        images = assignment.case.study.series.images().prefetch_related("instances")  # no SEG objects
        return [
            {
                "series_uid": uids.pseudo(s.series_uid),
                "modality": s.modality,
                "description": s.description if s.description in clean else "",
                "frame_of_reference_uid": uids.pseudo(s.frame_of_reference_uid)
                if s.frame_of_reference_uid
                else "",
                "n_instances": len(s.instances.all()),
            }
            for s in images
        ]


class ContourOutput(serializers.ModelSerializer):
    class Meta:
        model = Contour
        fields = ["joint", "series_uid", "sop_instance_uid", "slice_index", "points_mm", "start_mm", "end_mm"]


class ReadingOutput(serializers.ModelSerializer):
    """One of a reader's readings, addressed by its assignment's ``key`` and its ``version`` (1: as
    submitted, 2: its first correction, …). Contours name series and images by the assignment's
    pseudonymous UIDs; no reading, case or study id."""

    assignment = serializers.CharField(source="assignment.key")
    version = serializers.IntegerField()
    case_label = serializers.SerializerMethodField()
    values = serializers.SerializerMethodField()
    contours = serializers.SerializerMethodField()
    supersedes = serializers.SerializerMethodField(help_text="the version this one corrects")
    superseded = serializers.SerializerMethodField()

    class Meta:
        model = Reading
        fields = [
            "assignment",
            "version",
            "case_label",
            "project_id",
            "supersedes",
            "superseded",
            "reason",
            "duration_s",
            "values",
            "contours",
            "created_at",
        ]

    def get_case_label(self, reading: Reading) -> str:
        return assignment_pseudonym(reading.assignment)

    def get_values(self, reading: Reading) -> list[dict[str, Any]]:
        return [
            {"joint": v.joint, "region": v.region, "lesion": v.lesion, "value": v.value, "rating": v.rating}
            for v in reading.values.all()
        ]

    @extend_schema_field(ContourOutput(many=True))
    def get_contours(self, reading: Reading) -> list[dict[str, Any]]:
        contours = reading.contours.all()
        if not contours:
            return []
        rows = ContourOutput(contours, many=True).data
        return contours_to_pseudonymous(_reader_uids(reading.assignment), list(rows))

    def get_supersedes(self, reading: Reading) -> int | None:
        return reading.version - 1 if reading.supersedes_id else None  # type: ignore[attr-defined]

    def get_superseded(self, reading: Reading) -> bool:
        return hasattr(reading, "superseded_by")


class AuditEventOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)  # null: the system

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "project_id",
            "object_type",
            "object_id",
            "data",
            "request_id",
            "ip",
        ]
