"""Output serializers: render rows, nothing else. Input serializers live beside their view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Count
from django.utils.crypto import salted_hmac
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from labeling.conditions import CONDITIONS, condition_label
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
    ReadingValue,
    Series,
    Study,
)
from labeling.selectors import WorklistRow, roles_of
from labeling.services.identity import assignment_uids, clean_series_descriptions, contours_to_pseudonymous

RATING_KINDS = [("ordinal", "labelled levels"), ("probability", "a probability 0–100")]


class RatingScaleOutput(serializers.Serializer):
    """A rating asked with a binary item: a confidence scale ("ordinal") or a probability 0–100."""

    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=RATING_KINDS)
    min = serializers.IntegerField(source="low")
    max = serializers.IntegerField(source="high")
    present_from = serializers.IntegerField(help_text="the first rating that calls the lesion present")
    labels = serializers.DictField(child=serializers.CharField(), source="label_map")


class FormItemOutput(serializers.Serializer):
    """One cell of the reading form: the values a reader picks from, and the rating asked with it, if any."""

    joint = serializers.CharField()
    region = serializers.CharField()
    lesion = serializers.CharField()
    values = serializers.ListField(child=serializers.IntegerField())
    rating = RatingScaleOutput(allow_null=True)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object, passed through as stored."""


class SchemeOutput(serializers.ModelSerializer):
    form = FormItemOutput(source="parsed.form_items", many=True, read_only=True)
    definition = JSONObjectField(
        help_text="the scheme's YAML as JSON: joints, lesions, grades, acquisition …"
    )

    class Meta:
        model = GradingScheme
        fields = ["id", "name", "version", "modality", "form", "definition"]


#: (id, content hash) → the scheme as SchemeOutput writes it; one entry per scheme version this process served
_SCHEME_OUTPUTS: dict[tuple[int, str], dict[str, Any]] = {}


@extend_schema_field(SchemeOutput)
class SchemeField(serializers.Field):
    """The scheme at ``source`` as ``SchemeOutput`` writes it: once per version and process, as a version is
    never rewritten (every case a reader opens carries the whole form)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, scheme: GradingScheme) -> dict[str, Any]:
        if not scheme.content_hash:  # not loaded from a file: nothing says it is the same
            return dict(SchemeOutput(scheme).data)
        key = (scheme.pk, scheme.content_hash)
        if (written := _SCHEME_OUTPUTS.get(key)) is None:
            written = _SCHEME_OUTPUTS[key] = dict(SchemeOutput(scheme).data)
        return written


class ConditionOutput(serializers.Serializer):
    """A reader-study condition: its name, the label readers see, and what it serves in words."""

    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field (DRF pops it), not Field.label
    description = serializers.CharField()
    ai = serializers.BooleanField(help_text="the read is served the AI pre-read")


def condition_choices(project: Project) -> list[dict[str, Any]]:
    """The conditions the project's scheme can serve (a sequence-restricted one needs that sequence)."""
    sequences = set(project.scheme.parsed.sequences)
    return [
        {"name": c.name, "label": c.label, "description": c.description, "ai": c.ai}
        for c in CONDITIONS.values()
        if set(c.sequences or ()) <= sequences
    ]


class ConditionChoicesField(serializers.ListField):
    """The project's ``condition_choices``, computed from its scheme."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=ConditionOutput(), **kwargs)

    def get_attribute(self, instance: Project) -> list[dict[str, Any]]:
        return condition_choices(instance)


class ProjectReaderOutput(serializers.ModelSerializer):
    """What a reader sees of a project: not its study design (repeat fraction, washout, gold, thresholds)."""

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
            "ai_aided_reads",
            "created_at",
        ]


class ProjectOutput(ProjectReaderOutput):
    """The full project: the reader's view and its study design, for staff, admins and adjudicators."""

    reader_study_conditions = serializers.ListField(
        child=serializers.CharField(), help_text="the conditions set (empty: the default)"
    )
    study_conditions = serializers.ListField(
        child=serializers.CharField(),
        help_text="the reader study's conditions in effect, in order (fewer than two: no reader study)",
    )
    condition_choices = ConditionChoicesField(help_text="the conditions the project's scheme can serve")

    class Meta(ProjectReaderOutput.Meta):
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
            "reader_study_conditions",
            "study_conditions",
            "condition_choices",
            "readers_may_adjudicate_own_cases",
            "deidentify",
            "deidentify_dates",
            "deidentify_clean_descriptors",
            "created_at",
        ]
        # Every field is always written: the schema tells this full view from the reader's (which lacks the
        # study design) by the fields it requires.
        extra_kwargs = {name: {"required": True} for name in fields}


#: What the project endpoints answer: the full project, or the reader's view of it (``project_output``).
PROJECT_FOR_CALLER = PolymorphicProxySerializer(
    component_name="ProjectForCallerOutput",
    serializers=[ProjectOutput, ProjectReaderOutput],
    resource_type_field_name=None,
)
PROJECTS_FOR_CALLER = PolymorphicProxySerializer(
    component_name="ProjectForCallerOutput",
    serializers=[ProjectOutput, ProjectReaderOutput],
    resource_type_field_name=None,
    many=True,
)


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
    n_instances = serializers.IntegerField(source="instances.count", read_only=True)  # prefetched: no query

    class Meta:
        model = Series
        fields = ["series_uid", "modality", "description", "frame_of_reference_uid", "n_instances"]


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
            "condition",
            "status",
            "previous_id",
            "not_before",
            "started_at",
            "submitted_at",
        ]


def assignment_pseudonym(assignment: Assignment) -> str:
    """The name a reader sees for the case of one assignment: derived from the assignment alone (an HMAC
    keyed by SECRET_KEY), so a blinded repeat of a case looks like a new case, unlike its label or id."""
    return pseudonym_of(assignment.pk)


def pseudonym_of(assignment_id: int) -> str:
    """``assignment_pseudonym`` of the assignment with id ``assignment_id``."""
    return (
        salted_hmac("concord.assignment.label", str(assignment_id), algorithm="sha256")
        .hexdigest()[:8]
        .upper()
    )


def reader_uids(assignment: Assignment, context: Mapping[str, Any] | None = None) -> UidMap:
    """The assignment's UID map, built once per serialised assignment (or given by the view, which built it
    for the request: ``context["uids"]``, assignment id → map)."""
    cached = getattr(assignment, "_reader_uids", None)
    if cached is None:
        cached = (context or {}).get("uids", {}).get(assignment.pk) or assignment_uids(assignment)
        assignment._reader_uids = cached  # type: ignore[attr-defined]
    return cached


@extend_schema_field(OpenApiTypes.STR)
class PseudonymField(serializers.Field):
    """The case label a reader sees for the assignment at ``source``: its pseudonym (``assignment_pseudonym``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, assignment: Assignment) -> str:
        return assignment_pseudonym(assignment)


class WorklistItemOutput(serializers.ModelSerializer):
    """What a reader sees of an assignment: its opaque ``key`` (the only way readers address it), no session
    number, no gold flag, and neither the case's id nor its label: ``case_label`` is the assignment's own
    pseudonym (blinding; a repeat looks like a new case)."""

    case_label = PseudonymField(source="*")
    condition_label = serializers.CharField(
        read_only=True, help_text='the read\'s condition in words ("AI-aided", "T1 only")'
    )

    class Meta:
        model = Assignment
        fields = ["key", "case_label", "status", "aided", "condition", "condition_label", "started_at"]


_DATETIME = serializers.DateTimeField()


def worklist_item(row: WorklistRow) -> dict[str, Any]:
    """A worklist row as ``WorklistItemOutput`` answers it, without DRF's per-field work (a reader's worklist
    holds hundreds of rows; the serializer stays as the schema's declaration)."""
    return {
        "key": row.key,
        "case_label": pseudonym_of(row.pk),
        "status": row.status,
        "aided": row.aided,
        "condition": row.condition,
        "condition_label": condition_label(row.condition),
        "started_at": None if row.started_at is None else _DATETIME.to_representation(row.started_at),
    }


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
    scheme = SchemeField(source="project.scheme")

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
        return reader_uids(assignment, self.context).pseudo(assignment.case.study.study_uid)

    @extend_schema_field(ReaderSeriesOutput(many=True))
    def get_series(self, assignment: Assignment) -> list[dict[str, Any]]:
        uids = reader_uids(assignment, self.context)
        clean = clean_series_descriptions()
        images = (  # no SEG objects
            assignment.case.study.series.images().annotate(n_instances=Count("instances")).order_by("id")
        )
        hidden = uids.hidden_series  # the read's condition may hide some (a T1-only read: no STIR)
        return [
            {
                "series_uid": uids.pseudo(s.series_uid),
                "modality": s.modality,
                "description": s.description if s.description in clean else "",
                "frame_of_reference_uid": uids.pseudo(s.frame_of_reference_uid)
                if s.frame_of_reference_uid
                else "",
                "n_instances": s.n_instances,
            }
            for s in images
            if s.series_uid not in hidden
        ]


POINT_MM_SCHEMA = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}


@extend_schema_field({"type": "array", "items": POINT_MM_SCHEMA})
class PointsMmField(serializers.JSONField):
    """A contour's points, [x, y, z] in patient mm each: passed through as stored, typed for the schema."""


@extend_schema_field(POINT_MM_SCHEMA)
class PointMmField(serializers.JSONField):
    """One point [x, y, z] in patient mm: passed through as stored, typed for the schema."""


class ContourOutput(serializers.ModelSerializer):
    points_mm = PointsMmField()
    start_mm = PointMmField()
    end_mm = PointMmField()

    class Meta:
        model = Contour
        fields = ["joint", "series_uid", "sop_instance_uid", "slice_index", "points_mm", "start_mm", "end_mm"]


class ValueRow(serializers.Serializer):
    """One value of a reading as a reader sends it (and finds it in their draft); the scheme checks it."""

    joint = serializers.CharField()
    region = serializers.CharField()
    lesion = serializers.CharField()
    value = serializers.IntegerField()
    rating = serializers.IntegerField(required=False, help_text="where the scheme asks for a rating")


class ContourRow(serializers.Serializer):
    """One traced joint line on one slice, as a reader sends it (series named by pseudonymous UIDs)."""

    joint = serializers.CharField()
    series_uid = serializers.CharField()
    sop_instance_uid = serializers.CharField(required=False)
    slice_index = serializers.IntegerField()
    points_mm = PointsMmField()


@extend_schema_field(ValueRow(many=True))
class ValueRowsField(serializers.ListField):
    """Value rows, passed on as sent: the scheme checks them (naming the offending field, ``values[3].region``)."""

    child = serializers.DictField()


@extend_schema_field(ContourRow(many=True))
class ContourRowsField(serializers.ListField):
    """Contour rows, passed on as sent: the service checks them."""

    child = serializers.DictField()


class ReadingValueOutput(serializers.ModelSerializer):
    class Meta:
        model = ReadingValue
        fields = ["joint", "region", "lesion", "value", "rating"]
        read_only_fields = fields


class ReadingOutput(serializers.ModelSerializer):
    """One of a reader's readings, addressed by its assignment's ``key`` and its ``version`` (1: as
    submitted, 2: its first correction, …). Contours name series and images by the assignment's
    pseudonymous UIDs; no reading, case or study id."""

    assignment = serializers.CharField(source="assignment.key")
    version = serializers.IntegerField()
    case_label = PseudonymField(source="assignment")
    values = ReadingValueOutput(many=True, read_only=True)
    contours = serializers.SerializerMethodField()
    supersedes = serializers.SerializerMethodField(help_text="the version this one corrects")
    superseded = serializers.BooleanField(read_only=True)

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

    @extend_schema_field(ContourOutput(many=True))
    def get_contours(self, reading: Reading) -> list[dict[str, Any]]:
        contours = reading.contours.all()
        if not contours:
            return []
        rows = ContourOutput(contours, many=True).data
        return contours_to_pseudonymous(reader_uids(reading.assignment, self.context), list(rows))

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


# --- schemas of answers built as dicts by selectors (the views pass those dicts on unchanged) -------------


# --- AI pre-reads: one typed output per model kind, as ml.pipelines write them; serving a pre-read through
# these keeps only the declared fields (a reader's pre-read names no case, study or file).


def _coords(**kwargs: Any) -> serializers.ListField:
    """A point: (x, y) px or (x, y, z) mm."""
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=3, **kwargs)


class AiContourOutput(serializers.Serializer):
    """One joint line traced by the contour model on one slice of the T1 series (patient LPS mm)."""

    slice_index = serializers.IntegerField(help_text="the slice in the series' slice order")
    side = serializers.CharField(help_text="the joint (left, right)")
    points_mm = serializers.ListField(child=_coords(), help_text="superior end first")
    confidence = serializers.FloatField(help_text="the smaller heatmap peak: about 1 for a clear joint")
    reached_end = serializers.BooleanField(required=False)
    stop_reason = serializers.CharField(required=False)


class ContourPreReadOutput(serializers.Serializer):
    contours = AiContourOutput(many=True, help_text="the confidently traced joint lines")


class LesionCentresOutput(serializers.Serializer):
    left = _coords()
    right = _coords()


class LesionsPreReadOutput(serializers.Serializer):
    """P(value 1) of each lesion output per joint, keyed ``lesion/region`` (``bme/iliac_upper`` …)."""

    left = serializers.DictField(child=serializers.FloatField())
    right = serializers.DictField(child=serializers.FloatField())
    centres_px = LesionCentresOutput(required=False, help_text="each joint's centre on its slice (px)")


class CtJointOutput(serializers.Serializer):
    """The CT grader on one joint: a probability per mNY grade 0–4 and the most probable grade."""

    probabilities = serializers.ListField(child=serializers.FloatField())
    grade = serializers.IntegerField(min_value=0, max_value=4)
    groupings = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        required=False,
        help_text="grouped grades (e.g. normal / sacroiliitis) with their probabilities",
    )
    centre_mm = _coords(required=False, help_text="the joint's centre (patient mm)")


class CtgradePreReadOutput(serializers.Serializer):
    left = CtJointOutput()
    right = CtJointOutput()
    total_score = serializers.IntegerField(required=False, help_text="left + right grade")
    mny_positive = serializers.BooleanField(required=False, help_text="the mNY radiological criterion")


class _AiPrediction(serializers.Serializer):
    kind = serializers.CharField()
    version = serializers.IntegerField()


class ContourAiPredictionOutput(_AiPrediction):
    """A promoted contour model's pre-read of a case."""

    output = ContourPreReadOutput()


class LesionsAiPredictionOutput(_AiPrediction):
    """A promoted lesion model's pre-read of a case."""

    output = LesionsPreReadOutput()


class CtgradeAiPredictionOutput(_AiPrediction):
    """A promoted CT grader's pre-read of a case."""

    output = CtgradePreReadOutput()


AI_PREDICTION_OUTPUTS: dict[str, type[serializers.Serializer]] = {
    "contour": ContourAiPredictionOutput,
    "lesions": LesionsAiPredictionOutput,
    "ctgrade": CtgradeAiPredictionOutput,
}
#: The schema of a case's pre-reads: a list of the kinds' outputs, each told apart by ``kind``.
_AI_VARIANTS: dict[str, serializers.Serializer | type[serializers.Serializer]] = {**AI_PREDICTION_OUTPUTS}
AI_PREDICTIONS_SCHEMA = PolymorphicProxySerializer(
    component_name="AiPredictionOutput",
    serializers=_AI_VARIANTS,
    resource_type_field_name="kind",
    many=True,
)


def ai_predictions_output(predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pre-reads (``{"kind", "version", "output"}``) as their kind's serializer writes them: only the declared
    fields, whatever else the stored output carries; a kind this API does not know is left out."""
    return [
        AI_PREDICTION_OUTPUTS[p["kind"]](p).data for p in predictions if p["kind"] in AI_PREDICTION_OUTPUTS
    ]


@extend_schema_field(AI_PREDICTIONS_SCHEMA)
class AiPredictionsField(serializers.Field):
    """The promoted models' pre-reads of a case, each typed by its kind."""

    def to_representation(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return ai_predictions_output(value)


class ReadingExplanationOutput(serializers.Serializer):
    """What the consensus model believes a reader means by a value (ml.consensus.explain)."""

    sentence = serializers.CharField()
    meaning = serializers.CharField()
    believed = serializers.ListField(child=serializers.FloatField())
    tendency = serializers.CharField()
    row = serializers.CharField(allow_null=True)


class AdjudicationReadingOutput(serializers.Serializer):
    reader = serializers.CharField(help_text="the reader's pseudonym in the project")
    session = serializers.IntegerField()
    value = serializers.IntegerField()
    reader_confusion = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), allow_null=True
    )
    explanation = ReadingExplanationOutput(allow_null=True, help_text="null without a consensus model")


class AdjudicationContourOutput(serializers.Serializer):
    reader = serializers.CharField()
    session = serializers.IntegerField()
    series_uid = serializers.CharField()
    slice_index = serializers.IntegerField()
    points_mm = PointsMmField()


class AdjudicationDecisionOutput(serializers.Serializer):
    value = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    current = serializers.BooleanField()


class AdjudicationItemOutput(serializers.Serializer):
    """Every current reading of one item (readers pseudonymised), its posterior, the readers' confusion
    matrices, their contours of the joint, the AI pre-reads and the decisions so far (newest first)."""

    case_id = serializers.IntegerField()
    case_label = serializers.CharField()
    study_uid = serializers.CharField()
    joint = serializers.CharField()
    region = serializers.CharField()
    lesion = serializers.CharField()
    values = serializers.ListField(child=serializers.IntegerField())
    threshold = serializers.FloatField(help_text="the project's certainty threshold")
    focus_slice = serializers.IntegerField(allow_null=True, help_text="the median slice the readers traced")
    posterior = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    consensus_label = serializers.IntegerField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    readings = AdjudicationReadingOutput(many=True)
    contours = AdjudicationContourOutput(many=True)
    ai = AiPredictionsField()
    adjudications = AdjudicationDecisionOutput(many=True)


class CalibrationOutput(serializers.Serializer):
    """A reader's readings of one lesion against the consensus: counts[consensus class][reader's class]."""

    lesion = serializers.CharField()
    values = serializers.ListField(child=serializers.IntegerField())
    n = serializers.IntegerField()
    agree = serializers.IntegerField()
    counts = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))
    agreement = serializers.FloatField(allow_null=True)
    observed = serializers.CharField(allow_null=True, help_text="what the counts say about the reader")
    model = serializers.CharField(allow_null=True, help_text="what the consensus model believes about them")
    explanation = serializers.CharField(allow_null=True, help_text="the agreement in words")


class ContourReliabilityOutput(serializers.Serializer):
    reader = serializers.CharField()
    n_contours = serializers.IntegerField()
    mean_mm = serializers.FloatField(allow_null=True)
    p95_mm = serializers.FloatField(allow_null=True)


class StatOutput(serializers.Serializer):
    """One agreement statistic with its percentile bootstrap interval (null where undefined)."""

    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="units the statistic used")
    n_boot = serializers.IntegerField(help_text="bootstrap replicates with a defined value")


class AgreementCellOutput(serializers.Serializer):
    lesion = serializers.CharField()
    joint = serializers.CharField()
    region = serializers.CharField()
    n_cases = serializers.IntegerField()
    n_readers = serializers.IntegerField()
    alpha = StatOutput()
    fleiss_kappa = StatOutput()
    fleiss_readers_per_case = serializers.IntegerField()


class IntraReaderOutput(serializers.Serializer):
    lesion = serializers.CharField()
    reader = serializers.CharField()
    sessions = serializers.IntegerField()
    kappa = StatOutput()


class ReaderAgreementOutput(serializers.Serializer):
    lesion = serializers.CharField()
    reader = serializers.CharField()
    n_reads = serializers.IntegerField()
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    counts = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    sensitivity = serializers.FloatField(allow_null=True)
    specificity = serializers.FloatField(allow_null=True)
    bias = serializers.FloatField(allow_null=True)
    spread = serializers.FloatField(allow_null=True)


class TotalScoreOutput(serializers.Serializer):
    form = serializers.CharField(allow_null=True, help_text="the ICC form; null without enough data")
    readers_per_case = serializers.IntegerField(required=False)
    icc = StatOutput()
    n_cases = serializers.IntegerField()
    undefined_reason = serializers.CharField(
        allow_null=True, required=False, help_text="why the ICC is undefined (null when it is defined)"
    )


def constant(value: str) -> serializers.CharField:
    """A string field that always holds ``value`` (an inline one-value enum: the answer's discriminator)."""

    @extend_schema_field({"type": "string", "enum": [value]})
    class Constant(serializers.CharField):
        pass

    return Constant()


class AgreementComputingOutput(serializers.Serializer):
    """202: the worker is computing the project's first agreement report at this bootstrap size; ask again."""

    status = constant("computing")
    data_hash = serializers.CharField(help_text="fingerprint of the readings being analysed")


class AgreementReportOutput(serializers.Serializer):
    """κ/α per lesion × joint × region with CIs, reader confusion, intra-reader κ, ICC of the total score."""

    status = constant("ready")
    current = serializers.BooleanField(
        help_text="false while the worker computes a newer report: readings changed since as_of"
    )
    as_of = serializers.DateTimeField(help_text="when the readings this report analyses were read")
    duration_s = serializers.FloatField(help_text="seconds the worker took to compute it")
    project = serializers.IntegerField()
    n_boot = serializers.IntegerField()
    cells = AgreementCellOutput(many=True)
    intra_reader = IntraReaderOutput(many=True)
    readers = ReaderAgreementOutput(many=True)
    total_score = TotalScoreOutput()
