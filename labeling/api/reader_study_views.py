"""Reader-study (MRMC) results of a project: JSON, CSV and a self-contained HTML report (issue 14).

Each GET looks up the analysis of the project's current reads; when there is none yet for exactly these
inputs it queues the worker and answers 202 with ``{"status": "computing"}`` — ask again shortly.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.common import request_user
from labeling.api.permissions import ADMIN, project_for_unblinded
from labeling.api.reader_study_serializers import ReaderStudyComputingOutput, ReaderStudyOutput
from labeling.exceptions import InvalidInput
from labeling.models import Project, ReaderStudyAnalysis
from labeling.services.reader_study import (
    REFERENCES,
    compared_conditions,
    reader_study_csv,
    reader_study_enqueue,
    reader_study_lookup,
)
from labeling.services.reader_study_report import reader_study_html

REFERENCE = OpenApiParameter(
    "reference", str, enum=list(REFERENCES), description="reference standard (default: phantom)"
)
CONDITIONS = OpenApiParameter(
    "conditions",
    str,
    description="the two conditions compared, e.g. unaided,aided or t1_only,t1_stir; differences are the "
    "second minus the first (default: the project's first two study conditions)",
)
PARAMETERS = [REFERENCE, CONDITIONS]


def _analysis(
    request: Request, project_id: int
) -> tuple[Project, str, tuple[str, str], ReaderStudyAnalysis | None, str]:
    project = project_for_unblinded(request_user(request), project_id, ADMIN)  # agreement with the truth
    reference = request.query_params.get("reference", ReaderStudyAnalysis.Reference.PHANTOM)
    if reference not in REFERENCES:
        raise InvalidInput(f"must be one of {', '.join(REFERENCES)}", field="reference")
    asked = request.query_params.get("conditions")
    conditions = compared_conditions(project, asked)
    digest, analysis = reader_study_lookup(project=project, reference=reference, conditions=conditions)
    if analysis is None:
        reader_study_enqueue(project=project, reference=reference, conditions=conditions if asked else None)
    return project, reference, conditions, analysis, digest


def _computing(reference: str, conditions: tuple[str, str], digest: str) -> Response:
    return Response(
        {"status": "computing", "reference": reference, "conditions": list(conditions), "data_hash": digest},
        status=status.HTTP_202_ACCEPTED,
    )


def _filename(project: Project, reference: str, conditions: tuple[str, str], ext: str) -> str:
    return f"reader-study-project-{project.pk}-{reference}-{conditions[0]}-vs-{conditions[1]}.{ext}"


class ReaderStudyApi(APIView):
    @extend_schema(parameters=PARAMETERS, responses={200: ReaderStudyOutput, 202: ReaderStudyComputingOutput})
    def get(self, request: Request, project_id: int) -> Response:
        """MRMC analysis per endpoint of two conditions' reads, aided vs unaided by default (202 while the
        worker computes it)."""
        _project, reference, conditions, analysis, digest = _analysis(request, project_id)
        if analysis is None:
            return _computing(reference, conditions, digest)
        return Response({"status": "ready", **analysis.result})


class ReaderStudyCsvApi(APIView):
    @extend_schema(parameters=PARAMETERS, responses={(200, "text/csv"): str, 202: ReaderStudyComputingOutput})
    def get(self, request: Request, project_id: int) -> HttpResponse | Response:
        """Every estimate of the reader-study analysis as CSV (202 while the worker computes it)."""
        project, reference, conditions, analysis, digest = _analysis(request, project_id)
        if analysis is None:
            return _computing(reference, conditions, digest)
        response = HttpResponse(reader_study_csv(analysis.result), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="{_filename(project, reference, conditions, "csv")}"'
        )
        return response


class ReaderStudyReportApi(APIView):
    @extend_schema(
        parameters=PARAMETERS, responses={(200, "text/html"): str, 202: ReaderStudyComputingOutput}
    )
    def get(self, request: Request, project_id: int) -> HttpResponse | Response:
        """A self-contained HTML report (methods, design, every number with its CI, figures inline)."""
        project, reference, conditions, analysis, digest = _analysis(request, project_id)
        if analysis is None:
            return _computing(reference, conditions, digest)
        response = HttpResponse(reader_study_html(project.name, analysis.result), content_type="text/html")
        if request.query_params.get("download"):
            response["Content-Disposition"] = (
                f'attachment; filename="{_filename(project, reference, conditions, "html")}"'
            )
        return response
