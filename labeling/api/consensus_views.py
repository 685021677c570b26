"""Consensus, adjudication and agreement endpoints (one class per operation)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api import serializers as out
from labeling.api.common import DB_INT_MAX, PaginatedApi, paginated, request_user
from labeling.api.permissions import ADJUDICATOR, ADMIN, READER, project_for, project_for_unblinded
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import (
    AgreementReport,
    ConsensusRun,
    ContourAdjudication,
    ContourConsensus,
    ItemPosterior,
)
from labeling.services.adjudication import adjudication_record, contour_adjudication_record
from labeling.services.agreement import agreement_csv, agreement_enqueue, agreement_lookup
from labeling.services.readings import calibration_show, consensus_enqueue


class ConsensusRunOutput(serializers.ModelSerializer):
    class Meta:
        model = ConsensusRun
        fields = [
            "id",
            "lesion",
            "model",
            "data_hash",
            "parameters",
            "n_classes",
            "n_items",
            "n_readers",
            "n_readings",
            "n_clamped",
            "n_iter",
            "converged",
            "log_likelihood",
            "prior",
            "is_current",
            "duration_s",
            "created_at",
            "watermark",
            "n_incremental",
            "updated_at",
        ]


class ReaderConfusionOutput(serializers.Serializer):
    reader = serializers.CharField()
    matrix = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    counts = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    n_reads = serializers.IntegerField()
    bias = serializers.FloatField(allow_null=True)
    spread = serializers.FloatField(allow_null=True)


class QueueItemOutput(serializers.ModelSerializer):
    lesion = serializers.CharField(source="run.lesion")
    case_label = serializers.CharField(source="case.label")

    class Meta:
        model = ItemPosterior
        fields = [
            "case_id",
            "case_label",
            "joint",
            "region",
            "lesion",
            "posterior",
            "label",
            "max_posterior",
            "entropy",
            "n_readings",
            "run_id",
        ]


class ConsensusListApi(APIView):
    @extend_schema(responses=ConsensusRunOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """The current consensus run of every lesion type."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN, ADJUDICATOR)
        return Response(ConsensusRunOutput(selectors.consensus_current_runs(project=project), many=True).data)


class ConsensusRefitApi(APIView):
    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request, project_id: int) -> Response:
        """Queue a refit now (an unchanged data set reuses the current runs)."""
        project = project_for(request_user(request), project_id, ADMIN)
        consensus_enqueue(project.pk, debounce=False)
        return Response({"detail": "consensus refit queued"}, status=status.HTTP_202_ACCEPTED)


class ConsensusReadersApi(APIView):
    @extend_schema(responses=ReaderConfusionOutput(many=True))
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        """Each reader's confusion matrix in one run (readers pseudonymised)."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN, ADJUDICATOR)
        run = project.consensus_runs.filter(pk=run_id).first()
        if run is None:
            raise NotFound("no such consensus run")
        names = selectors.reader_pseudonyms(project=project)
        rows = [
            {
                "reader": names.get(c.reader_id, "Reader ?"),
                "matrix": c.matrix,
                "counts": c.counts,
                "n_reads": c.n_reads,
                "bias": c.bias,
                "spread": c.spread,
            }
            for c in run.confusions.all()
        ]
        return Response(ReaderConfusionOutput(rows, many=True).data)


class AdjudicationQueueApi(PaginatedApi):
    @extend_schema(responses=QueueItemOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """Items the consensus is least sure of, most uncertain first."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        return paginated(
            request,
            self,
            selectors.adjudication_queue(project=project, adjudicator=request_user(request)),
            QueueItemOutput,
        )


class AdjudicationItemApi(APIView):
    @extend_schema(responses=out.AdjudicationItemOutput)
    def get(
        self, request: Request, project_id: int, case_id: int, joint: str, region: str, lesion: str
    ) -> Response:
        """Every reading of one item (pseudonymised), its posterior and the readers' confusion matrices."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        item = selectors.adjudication_item(
            project=project,
            case_id=case_id,
            joint=joint,
            region=region,
            lesion=lesion,
            adjudicator=request_user(request),
        )
        return Response({**item, "ai": out.ai_predictions_output(item["ai"])})


class AdjudicationRecordApi(APIView):
    class AdjudicationRecordInput(serializers.Serializer):
        case_id = serializers.IntegerField()
        joint = serializers.CharField(max_length=16)
        region = serializers.CharField(max_length=32)
        lesion = serializers.CharField(max_length=32)
        value = serializers.IntegerField()
        reason = serializers.CharField(max_length=1000)

    @extend_schema(request=AdjudicationRecordInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, project_id: int) -> Response:
        """Record the final class of an item with a reason; it is clamped in the next refit."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR)
        payload = self.AdjudicationRecordInput(data=request.data)
        payload.is_valid(raise_exception=True)
        adjudication = adjudication_record(
            actor=request_user(request), project=project, **payload.validated_data
        )
        return Response(
            {"id": adjudication.pk, "value": adjudication.value, "supersedes": adjudication.supersedes_id},
            status=status.HTTP_201_CREATED,
        )


class QueueReasonOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=selectors.QUEUE_REASONS)
    text = serializers.CharField()


class CaseQueueItemOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["grade", "contour"])
    joint = serializers.CharField()
    region = serializers.CharField(allow_null=True)
    lesion = serializers.CharField(allow_null=True)
    consensus = serializers.IntegerField(allow_null=True)
    max_posterior = serializers.FloatField(allow_null=True)
    values_read = serializers.ListField(child=serializers.IntegerField())
    n_readers = serializers.IntegerField()
    single_read = serializers.BooleanField()
    reasons = QueueReasonOutput(many=True)
    slice_index = serializers.IntegerField(allow_null=True)
    disagreement_mm = serializers.FloatField(allow_null=True)


class CaseQueueOutput(serializers.Serializer):
    case_id = serializers.IntegerField()
    case_label = serializers.CharField()
    n_items = serializers.IntegerField()
    n_single_read = serializers.IntegerField()
    lowest_posterior = serializers.FloatField(allow_null=True)
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=selectors.QUEUE_REASONS))
    items = CaseQueueItemOutput(many=True)


class CaseQueuePageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    threshold = serializers.FloatField()
    contour_threshold_mm = serializers.FloatField()
    results = CaseQueueOutput(many=True)


class AdjudicationCasesApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("lesion", str, description="only items of this lesion (contours left out)"),
            OpenApiParameter("joint", str, description="only items of this joint"),
            OpenApiParameter(
                "reason", str, enum=list(selectors.QUEUE_REASONS), description="only this reason"
            ),
            OpenApiParameter(
                "single_read", str, enum=["include", "exclude"], description="items read once (default: last)"
            ),
            OpenApiParameter("limit", int, description="cases per page (default 50, at most 500)"),
            OpenApiParameter("offset", int, description="cases to skip"),
        ],
        responses=CaseQueuePageOutput,
    )
    def get(self, request: Request, project_id: int) -> Response:
        """The adjudication queue by case: each case's items in dispute (low consensus certainty, readers who
        disagree, contours apart), with the reason and threshold; lowest certainty first, single reads last."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        q = request.query_params
        single = q.get("single_read", "include")
        if single not in ("include", "exclude"):
            raise InvalidInput("must be include or exclude", field="single_read")
        limit, offset = _int_param(q, "limit", 50, 500), _int_param(q, "offset", 0, None)
        queue = selectors.adjudication_cases(
            project=project,
            adjudicator=request_user(request),
            lesion=q.get("lesion") or None,
            joint=q.get("joint") or None,
            reason=q.get("reason") or None,
            single_read=single == "include",
        )
        cases = queue.pop("cases")
        return Response(
            CaseQueuePageOutput(
                {**queue, "count": len(cases), "results": cases[offset : offset + limit]}
            ).data
        )


def _int_param(params: Any, name: str, default: int, most: int | None) -> int:
    raw = params.get(name, str(default))
    if not raw.isdigit() or (most is not None and int(raw) > most):
        raise InvalidInput(f"must be an integer from 0{f' to {most}' if most else ''}", field=name)
    return int(raw)


class ContourLineOutput(serializers.Serializer):
    reader = serializers.CharField()
    session = serializers.IntegerField()
    points_mm = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    mean_mm = serializers.FloatField(allow_null=True)
    p95_mm = serializers.FloatField(allow_null=True)


class ContourDecisionOutput(serializers.Serializer):
    choice = serializers.ChoiceField(choices=ContourAdjudication.Source.choices)
    reader = serializers.CharField(allow_null=True)
    points_mm = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    reason = serializers.CharField()
    created_at = serializers.CharField()
    current = serializers.BooleanField()


class ContourDisputeOutput(serializers.Serializer):
    case_id = serializers.IntegerField()
    case_label = serializers.CharField()
    study_uid = serializers.CharField()
    joint = serializers.CharField()
    slice_index = serializers.IntegerField()
    series_uid = serializers.CharField()
    threshold_mm = serializers.FloatField()
    disagreement_mm = serializers.FloatField(allow_null=True)
    flagged = serializers.BooleanField()
    consensus = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), allow_null=True
    )
    readers = ContourLineOutput(many=True)
    decisions = ContourDecisionOutput(many=True)


class ContourDisputeApi(APIView):
    @extend_schema(responses=ContourDisputeOutput)
    def get(self, request: Request, project_id: int, case_id: int, joint: str, slice_index: int) -> Response:
        """One contour disagreement: the readers' lines (pseudonymised) with their distance to the consensus
        line, the consensus line, and the decisions so far."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        dispute = selectors.contour_dispute(
            project=project,
            case_id=case_id,
            joint=joint,
            slice_index=slice_index,
            adjudicator=request_user(request),
        )
        return Response(ContourDisputeOutput(dispute).data)


class ContourAdjudicationRecordApi(APIView):
    class ContourAdjudicationInput(serializers.Serializer):
        case_id = serializers.IntegerField()
        joint = serializers.CharField(max_length=16)
        slice_index = serializers.IntegerField(min_value=0, max_value=DB_INT_MAX)
        choice = serializers.ChoiceField(choices=ContourAdjudication.Source.choices)
        reader = serializers.CharField(
            max_length=64,
            required=False,
            default="",
            allow_blank=True,
            help_text="the pseudonym of the reader whose line is chosen; blank or absent for the other choices",
        )
        points_mm = serializers.JSONField(required=False, default=None)
        reason = serializers.CharField(max_length=1000)

    @extend_schema(request=ContourAdjudicationInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, project_id: int) -> Response:
        """Record the final joint line of a slice: a reader's line, the consensus line, or one drawn here."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR)
        payload = self.ContourAdjudicationInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        decision = contour_adjudication_record(
            actor=request_user(request), project=project, source=data.pop("choice"), **data
        )
        return Response(
            {"id": decision.pk, "choice": decision.source, "supersedes": decision.supersedes_id},
            status=status.HTTP_201_CREATED,
        )


class ContourQueueOutput(serializers.ModelSerializer):
    case_label = serializers.CharField(source="case.label")
    points_mm = out.PointsMmField()

    class Meta:
        model = ContourConsensus
        fields = [
            "case_id",
            "case_label",
            "joint",
            "slice_index",
            "series_uid",
            "points_mm",
            "n_contours",
            "disagreement_mm",
        ]


class ContourQueueApi(PaginatedApi):
    @extend_schema(responses=ContourQueueOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """Slices where readers' joint contours disagree beyond the project's threshold, worst first."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        return paginated(request, self, selectors.contour_queue(project=project), ContourQueueOutput)


class ContourReliabilityApi(APIView):
    @extend_schema(responses=out.ContourReliabilityOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """Each reader's contour reliability: mean and 95th-percentile distance to the consensus, in mm."""
        project = project_for_unblinded(request_user(request), project_id, ADJUDICATOR, ADMIN)
        return Response(selectors.contour_reliability(project=project))


BOOT = OpenApiParameter("n_boot", int, description="bootstrap replicates for the CIs (0-2000, default 200)")


def _n_boot(request: Request) -> int:
    raw = request.query_params.get("n_boot", "200")
    if not raw.isdigit() or int(raw) > 2000:
        raise InvalidInput("must be an integer from 0 to 2000", field="n_boot")
    return int(raw)


def _agreement(request: Request, project_id: int) -> tuple[AgreementReport | None, bool, str]:
    """The newest stored report, whether it is current, and the inputs' fingerprint; queues a newer report
    when the stored one is missing or out of date."""
    project = project_for_unblinded(request_user(request), project_id, ADMIN, ADJUDICATOR)
    n_boot = _n_boot(request)
    digest, report = agreement_lookup(project=project, n_boot=n_boot)
    current = report is not None and report.data_hash == digest
    if not current:
        agreement_enqueue(project=project, n_boot=n_boot, stored=report)
    return report, current, digest


def _agreement_computing(digest: str) -> Response:
    return Response({"status": "computing", "data_hash": digest}, status=status.HTTP_202_ACCEPTED)


class AgreementApi(APIView):
    @extend_schema(
        parameters=[BOOT], responses={200: out.AgreementReportOutput, 202: out.AgreementComputingOutput}
    )
    def get(self, request: Request, project_id: int) -> Response:
        """κ/α per lesion × joint × region with CIs, reader confusion, intra-reader κ, ICC of the total.

        Computed on the worker: 202 until the first report is ready, then the newest report with
        ``current`` false while a newer one (of readings since ``as_of``) is being computed."""
        report, current, digest = _agreement(request, project_id)
        if report is None:
            return _agreement_computing(digest)
        return Response(
            {
                "status": "ready",
                "current": current,
                "as_of": report.as_of,
                "duration_s": report.duration_s,
                **report.result,
            }
        )


class AgreementCsvApi(APIView):
    @extend_schema(parameters=[BOOT], responses={(200, "text/csv"): str, 202: out.AgreementComputingOutput})
    def get(self, request: Request, project_id: int) -> HttpResponse:
        """The newest agreement report as CSV (202 until the worker has computed one)."""
        report, _current, digest = _agreement(request, project_id)
        if report is None:
            return _agreement_computing(digest)
        response = HttpResponse(agreement_csv(report.result), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="agreement-project-{report.project_id}.csv"'
        return response


class CalibrationApi(APIView):
    @extend_schema(responses=out.CalibrationOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """The reader's own readings against the consensus, on cases whose reading window has closed.

        404 while the reader has cases left to read here; readings of the cases shown can no longer be
        corrected."""
        project = project_for_unblinded(request_user(request), project_id, READER)
        return Response(calibration_show(reader=request_user(request), project=project))
