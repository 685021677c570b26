"""Output serializers: render rows, nothing else. Input serializers live beside their view."""

from __future__ import annotations

from typing import Any

from django.utils.crypto import salted_hmac
from rest_framework import serializers

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


class SchemeOutput(serializers.ModelSerializer):
    form = serializers.SerializerMethodField()

    class Meta:
        model = GradingScheme
        fields = ["id", "name", "version", "modality", "form", "definition"]

    def get_form(self, scheme: GradingScheme) -> list[dict[str, Any]]:
        return [
            {"joint": i.joint, "region": i.region, "lesion": i.lesion, "values": list(i.values)}
            for i in scheme.parsed.form_items
        ]


class ProjectOutput(serializers.ModelSerializer):
    scheme: serializers.Field = serializers.StringRelatedField()
    scheme_id = serializers.IntegerField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "scheme",
            "scheme_id",
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

    class Meta:
        model = Membership
        fields = ["id", "username", "role", "created_at"]


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
    n_assignments = serializers.IntegerField(read_only=True, default=None)
    n_readings = serializers.IntegerField(read_only=True, default=None)

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


class WorklistItemOutput(serializers.ModelSerializer):
    """What a reader sees of an assignment: no session number, no gold flag, and neither the case's id nor
    its label: ``case_label`` is the assignment's own pseudonym (blinding; a repeat looks like a new case)."""

    case_label = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "case_label", "status", "aided", "started_at"]

    def get_case_label(self, assignment: Assignment) -> str:
        return assignment_pseudonym(assignment)


class AssignmentReaderOutput(WorklistItemOutput):
    study_uid = serializers.CharField(source="case.study.study_uid")
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

    def get_series(self, assignment: Assignment) -> list[dict[str, Any]]:
        images = assignment.case.study.series.images().prefetch_related("instances")  # no SEG objects
        return list(SeriesOutput(images, many=True).data)


class ContourOutput(serializers.ModelSerializer):
    class Meta:
        model = Contour
        fields = ["joint", "series_uid", "sop_instance_uid", "slice_index", "points_mm", "start_mm", "end_mm"]


class ReadingOutput(serializers.ModelSerializer):
    values = serializers.SerializerMethodField()
    contours = ContourOutput(many=True)
    supersedes: serializers.Field = serializers.PrimaryKeyRelatedField(read_only=True)
    superseded = serializers.SerializerMethodField()

    class Meta:
        model = Reading
        fields = [
            "id",
            "assignment_id",
            "project_id",
            "case_id",
            "supersedes",
            "superseded",
            "reason",
            "duration_s",
            "values",
            "contours",
            "created_at",
        ]

    def get_values(self, reading: Reading) -> list[dict[str, Any]]:
        return [
            {"joint": v.joint, "region": v.region, "lesion": v.lesion, "value": v.value}
            for v in reading.values.all()
        ]

    def get_superseded(self, reading: Reading) -> bool:
        return hasattr(reading, "superseded_by")


class AuditEventOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)

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
