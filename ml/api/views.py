"""One API class per operation; permissions from labeling.api.permissions, logic in ml.services (one module per topic)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api import serializers as out
from labeling.api.common import DB_INT_MAX, PaginatedApi, paginated, request_user
from labeling.api.permissions import ADJUDICATOR, ADMIN, project_for, project_for_unblinded
from labeling.exceptions import NotFound
from ml.models import ModelKind, ModelVersion, Prediction, TrainingPolicy, TrainingRun
from ml.services.promotion import model_version_promote, promotion_floor
from ml.services.schedules import training_policy_update
from ml.services.training import training_run_cancel, training_run_start


def _metrics(help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.FloatField(allow_null=True), required=False, help_text=help_text
    )


class TrainingProgressOutput(serializers.Serializer):
    """A run's latest report (ml.pipelines.loop_progress and the fraction done); empty before training."""

    epoch = serializers.IntegerField(required=False, help_text="0-based; the CT model counts both fits")
    epochs = serializers.IntegerField(required=False)
    step = serializers.IntegerField(required=False, help_text="-1: the epoch is done")
    loss = serializers.FloatField(required=False, allow_null=True)
    metrics = _metrics("validation metrics of the epoch (null where not finite)")
    fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    phase = serializers.CharField(required=False, help_text="segmenter | grader (the CT model's two fits)")


class TrainingRunOutput(serializers.ModelSerializer):
    started_by = serializers.CharField(source="started_by.username", default=None, allow_null=True)
    progress = TrainingProgressOutput()
    config = serializers.DictField(help_text="the configuration the run trains with (its kind's keys)")
    model_version = serializers.IntegerField(source="model_version.pk", allow_null=True, read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "state",
            "trigger",
            "started_by",
            "snapshot_id",
            "config",
            "progress",
            "error",
            "cancel_requested",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "model_version",
        ]


class EpochRowOutput(serializers.Serializer):
    """One finished epoch: training loss and validation metrics (null where not finite)."""

    epoch = serializers.IntegerField()
    loss = serializers.FloatField(allow_null=True)
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    phase = serializers.CharField(required=False, help_text="segmenter | grader (the CT model's two fits)")


class TrainingRunDetailOutput(TrainingRunOutput):
    history = EpochRowOutput(many=True, read_only=True)

    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "log", "history"]


class GoldMetricsOutput(serializers.Serializer):
    """A version's metrics on the snapshot's gold cases (ml.pipelines' Evaluation); null where not finite.
    Each kind fills its own: contour the RMSE ones, lesions the AUCs, ctgrade QWK, accuracy, macro AUC."""

    primary = serializers.CharField(required=False, help_text="the deciding metric (larger is better)")
    n_gold = serializers.IntegerField(required=False)
    per_output = _metrics("the metric per output, for the no-drop rule")
    frac_below_2_76mm = serializers.FloatField(required=False, allow_null=True)
    rmse_mean_mm = serializers.FloatField(required=False, allow_null=True)
    rmse_p95_mm = serializers.FloatField(required=False, allow_null=True)
    mean_auc = serializers.FloatField(required=False, allow_null=True)
    min_auc = serializers.FloatField(required=False, allow_null=True)
    qwk = serializers.FloatField(required=False, allow_null=True)
    accuracy = serializers.FloatField(required=False, allow_null=True)
    macro_auc = serializers.FloatField(required=False, allow_null=True)


class PromotionFloorOutput(serializers.Serializer):
    metric = serializers.CharField()
    min = serializers.FloatField()
    set_by = serializers.ChoiceField(choices=["policy", "default"])


class ComparisonOutput(serializers.Serializer):
    """The promotion decision made when the version was registered (ml.services.promotion.compare)."""

    promote = serializers.BooleanField(required=False)
    reason = serializers.CharField(required=False)
    against_version = serializers.IntegerField(
        required=False, allow_null=True, help_text="the promoted version it was compared with"
    )
    current = _metrics("that version's gold metrics on the same snapshot")
    drops = _metrics("how much each output dropped against it")
    floor = PromotionFloorOutput(required=False)


class ModelVersionOutput(serializers.ModelSerializer):
    promoted_by = serializers.CharField(source="promoted_by.username", default=None, allow_null=True)
    gold_metrics = GoldMetricsOutput()
    comparison = ComparisonOutput()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "kind",
            "version",
            "status",
            "training_run_id",
            "gold_metrics",
            "comparison",
            "card",
            "created_at",
            "promoted_at",
            "promoted_by",
        ]


class TrainingPolicyOutput(serializers.ModelSerializer):
    floor = serializers.SerializerMethodField(
        help_text="the floor in force: metric, min, set_by (policy|default)"
    )

    class Meta:
        model = TrainingPolicy
        fields = [
            "kind",
            "schedule_enabled",
            "hour_utc",
            "min_new_items",
            "max_output_drop",
            "promotion_floor",
            "floor",
            "config",
        ]

    @extend_schema_field(PromotionFloorOutput)
    def get_floor(self, policy: TrainingPolicy) -> dict[str, Any]:
        return promotion_floor(project=policy.project, kind=policy.kind)


def _stored(base: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A kind's pre-read (labeling.api.serializers) with the time it was made."""
    return type(
        base.__name__.replace("AiPrediction", "Prediction"),
        (base,),
        {"created_at": serializers.DateTimeField(), "__doc__": f"{base.__doc__} With its time."},
    )


#: A promoted version's stored pre-read of a case, typed by its kind as readers get it, with its time.
PREDICTION_OUTPUTS = {kind: _stored(base) for kind, base in out.AI_PREDICTION_OUTPUTS.items()}
_PREDICTION_VARIANTS: dict[str, serializers.Serializer | type[serializers.Serializer]] = {
    **PREDICTION_OUTPUTS
}
PREDICTIONS_SCHEMA = PolymorphicProxySerializer(
    component_name="PredictionOutput",
    serializers=_PREDICTION_VARIANTS,
    resource_type_field_name="kind",
    many=True,
)


def predictions_output(predictions: Iterable[Prediction]) -> list[dict[str, Any]]:
    """Each pre-read through its kind's serializer: only the declared fields of its output."""
    return [
        PREDICTION_OUTPUTS[p.model_version.kind](
            {
                "kind": p.model_version.kind,
                "version": p.model_version.version,
                "output": p.output,
                "created_at": p.created_at,
            }
        ).data
        for p in predictions
        if p.model_version.kind in PREDICTION_OUTPUTS
    ]


class TrainingRunListApi(PaginatedApi):
    @extend_schema(responses=TrainingRunOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """Training runs of the project, newest first."""
        project = project_for(request_user(request), project_id, ADMIN)
        runs = project.training_runs.select_related("started_by", "model_version").order_by("-id")
        return paginated(request, self, runs, TrainingRunOutput)


class TrainingRunStartApi(APIView):
    class TrainingRunStartInput(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ModelKind.values)
        config = serializers.DictField(required=False, default=dict)

    @extend_schema(request=TrainingRunStartInput, responses={201: TrainingRunOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Queue a run on the gpu queue; 409 while one of this kind is queued or running."""
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.TrainingRunStartInput(data=request.data)
        payload.is_valid(raise_exception=True)
        run = training_run_start(actor=request_user(request), project=project, **payload.validated_data)
        return Response(TrainingRunOutput(run).data, status=status.HTTP_201_CREATED)


def _run_for(request: Request, project_id: int, run_id: int) -> TrainingRun:
    project = project_for(request_user(request), project_id, ADMIN)
    run = project.training_runs.filter(pk=run_id).first()
    if run is None:
        raise NotFound("no such training run")
    return run


class TrainingRunDetailApi(APIView):
    @extend_schema(responses=TrainingRunDetailOutput)
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        """One run with its live progress (epoch, loss, metric) and log."""
        return Response(TrainingRunDetailOutput(_run_for(request, project_id, run_id)).data)


class TrainingRunCancelApi(APIView):
    @extend_schema(request=None, responses=TrainingRunOutput)
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        """Stop a queued or running run (the worker stops at its next step)."""
        run = training_run_cancel(actor=request_user(request), run=_run_for(request, project_id, run_id))
        return Response(TrainingRunOutput(run).data)


class ModelVersionListApi(APIView):
    @extend_schema(responses=ModelVersionOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """Model versions with their gold metrics and the comparison that decided their promotion."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN, ADJUDICATOR)
        versions = project.model_versions.select_related("promoted_by").order_by("kind", "-version")
        return Response(ModelVersionOutput(versions, many=True).data)


class ModelVersionPromoteApi(APIView):
    class ModelVersionPromoteInput(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=ModelVersionPromoteInput, responses=ModelVersionOutput)
    def post(self, request: Request, project_id: int, version_id: int) -> Response:
        """Promote a version by hand, or roll back to an earlier one; audited."""
        project = project_for(request_user(request), project_id, ADMIN)
        version = project.model_versions.filter(pk=version_id).first()
        if version is None:
            raise NotFound("no such model version")
        payload = self.ModelVersionPromoteInput(data=request.data)
        payload.is_valid(raise_exception=True)
        version = model_version_promote(
            actor=request_user(request), version=version, **payload.validated_data
        )
        return Response(ModelVersionOutput(version).data)


class TrainingPolicyListApi(APIView):
    @extend_schema(responses=TrainingPolicyOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        return Response(TrainingPolicyOutput(project.training_policies.order_by("kind"), many=True).data)


class TrainingPolicyUpdateApi(APIView):
    class TrainingPolicyUpdateInput(serializers.Serializer):
        schedule_enabled = serializers.BooleanField(required=False)
        hour_utc = serializers.IntegerField(required=False, min_value=0, max_value=23)
        min_new_items = serializers.IntegerField(required=False, min_value=0, max_value=DB_INT_MAX)
        max_output_drop = serializers.FloatField(required=False, min_value=0, max_value=1)
        promotion_floor = serializers.FloatField(required=False, allow_null=True, min_value=-1, max_value=1)
        config = serializers.DictField(required=False)

    @extend_schema(request=TrainingPolicyUpdateInput, responses=TrainingPolicyOutput)
    def post(self, request: Request, project_id: int, kind: str) -> Response:
        """Set when the project retrains this kind on its own (nightly, given enough new labels)."""
        project = project_for(request_user(request), project_id, ADMIN)
        if kind not in ModelKind.values:
            raise NotFound("no such model kind")
        payload = self.TrainingPolicyUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        policy = training_policy_update(
            actor=request_user(request), project=project, kind=kind, **payload.validated_data
        )
        return Response(TrainingPolicyOutput(policy).data)


class CasePredictionListApi(APIView):
    @extend_schema(responses=PREDICTIONS_SCHEMA)
    def get(self, request: Request, project_id: int, case_id: int) -> Response:
        """AI pre-reads of a case by the promoted versions (adjudicators and admins)."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        if not project.cases.filter(pk=case_id).exists():
            raise NotFound("no such case")
        predictions = Prediction.objects.filter(
            case_id=case_id, model_version__status=ModelVersion.Status.PROMOTED
        ).select_related("model_version")
        return Response(predictions_output(predictions))
