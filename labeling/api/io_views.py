"""Imports (upload, DICOMweb query, progress) and exports (CSV, DICOM SR) of a project; admins only."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.http import FileResponse, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.common import PaginatedApi, paginated, request_user
from labeling.api.permissions import ADMIN, project_for, project_for_unblinded
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import Project
from labeling.services import exports
from labeling.services.deidentification import ExportIdentity, deidentification_mapping, export_identity
from labeling.services.ingest import import_dicomweb_queue
from labeling.services.uploads import import_upload_prepare


class ImportJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField(allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    source = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    report = serializers.DictField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class ImportUploadApi(APIView):
    parser_classes = [MultiPartParser]

    class ImportUploadInput(serializers.Serializer):
        files = serializers.ListField(child=serializers.FileField(), help_text="DICOM files and/or zips")

    @extend_schema(request={"multipart/form-data": ImportUploadInput}, responses={202: ImportJobOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Upload DICOM files or zips of them; they are validated now and imported by a queued job."""
        project = project_for(request_user(request), project_id, ADMIN)
        try:
            uploads = [f for key in request.FILES for f in request.FILES.getlist(key)]
        except TooManyFilesSent:
            raise InvalidInput(
                f"more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files in one upload: send a zip of them instead",
                field="files",
            ) from None
        job = import_upload_prepare(
            actor=request_user(request), project=project, files=[(f.name or "", f) for f in uploads]
        )
        return Response(ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ImportDicomwebApi(APIView):
    class ImportDicomwebInput(serializers.Serializer):
        filters = serializers.DictField(
            child=serializers.CharField(allow_blank=True),
            help_text='QIDO study filters, e.g. {"PatientID": "PHANTOM-*", "StudyDate": "20260101-"}',
        )
        url = serializers.CharField(
            required=False, help_text="a configured import source (default: DICOMWEB_URL)"
        )

    @extend_schema(request=ImportDicomwebInput, responses={202: ImportJobOutput})
    def post(self, request: Request, project_id: int) -> Response:
        """Queue an import of the studies a QIDO search on a DICOMweb server finds."""
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.ImportDicomwebInput(data=request.data)
        payload.is_valid(raise_exception=True)
        job = import_dicomweb_queue(actor=request_user(request), project=project, **payload.validated_data)
        return Response(ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class ImportListApi(PaginatedApi):
    @extend_schema(responses=ImportJobOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        """The project's imports, newest first."""
        project = project_for(request_user(request), project_id, ADMIN)
        return paginated(request, self, project.import_jobs.select_related("created_by"), ImportJobOutput)


class ImportDetailApi(APIView):
    @extend_schema(responses=ImportJobOutput)
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        """One import's status, progress (done of total files), problems and report."""
        project = project_for(request_user(request), project_id, ADMIN)
        job = project.import_jobs.select_related("created_by").filter(pk=job_id).first()
        if job is None:
            raise NotFound("no such import")
        return Response(ImportJobOutput(job).data)


def _csv(body: str, name: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


CSV = {(200, "text/csv"): OpenApiResponse(description="CSV with a header row")}
IDENTIFIED = OpenApiParameter(
    "identified",
    bool,
    description="original UIDs and patient IDs instead of pseudonyms (site administrators only; audited)",
)


def _identity(request: Request, project: Project, export: str) -> ExportIdentity:
    """Pseudonyms, or with ``?identified=true`` the originals (staff only, audited; 403 for anyone else)."""
    flag = request.query_params.get("identified", "false").strip().lower()
    if flag not in ("true", "false", "1", "0", ""):
        raise InvalidInput("identified must be true or false", field="identified")
    return export_identity(
        actor=request_user(request), project=project, identified=flag in ("true", "1"), export=export
    )


class ExportReadingsCsvApi(APIView):
    @extend_schema(responses=CSV, parameters=[IDENTIFIED])
    def get(self, request: Request, project_id: int) -> HttpResponse:
        """Every current reading value: one row per item × reader × session."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN)
        identity = _identity(request, project, "readings.csv")
        return _csv(
            exports.readings_csv(project=project, identity=identity), f"readings-project-{project.pk}.csv"
        )


class ExportConsensusCsvApi(APIView):
    @extend_schema(responses=CSV, parameters=[IDENTIFIED])
    def get(self, request: Request, project_id: int) -> HttpResponse:
        """The current consensus per item: posterior, MAP label, entropy and the adjudicated value."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN)
        identity = _identity(request, project, "consensus.csv")
        return _csv(
            exports.consensus_csv(project=project, identity=identity), f"consensus-project-{project.pk}.csv"
        )


class ExportAdjudicationsCsvApi(APIView):
    @extend_schema(responses=CSV, parameters=[IDENTIFIED])
    def get(self, request: Request, project_id: int) -> HttpResponse:
        """Every adjudication, superseded ones included."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN)
        identity = _identity(request, project, "adjudications.csv")
        return _csv(
            exports.adjudications_csv(project=project, identity=identity),
            f"adjudications-project-{project.pk}.csv",
        )


class ExportSrApi(APIView):
    @extend_schema(
        request=None,
        parameters=[IDENTIFIED],
        responses={(200, "application/zip"): OpenApiResponse(description="one TID 1500 SR per reading")},
    )
    def post(self, request: Request, project_id: int) -> FileResponse:
        """Build a DICOM Structured Report (TID 1500) for every current reading and return them as a zip."""
        project = project_for_unblinded(request_user(request), project_id, ADMIN)
        identity = _identity(request, project, "sr")
        archive = exports.sr_zip(actor=request_user(request), project=project, identity=identity)
        return FileResponse(
            archive,
            as_attachment=True,
            filename=f"sr-project-{project.pk}.zip",
            content_type="application/zip",
        )


class DeidentificationOutput(serializers.Serializer):
    study_uid = serializers.CharField(source="study.study_uid")
    patient_id = serializers.CharField(source="study.patient_id")
    original_study_uid = serializers.CharField()
    original_patient_id = serializers.CharField()
    original_patient_name = serializers.CharField()
    date_shift_days = serializers.IntegerField(allow_null=True, help_text="dates moved back by (shift)")
    profile = serializers.DictField(help_text="the de-identification options applied")
    uids = serializers.DictField(child=serializers.CharField(), help_text="pseudonymous UID → original UID")
    created_at = serializers.DateTimeField()


class DeidentificationMappingApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("study_uid", str, description="one study, by its stored (pseudonymous) UID")
        ],
        responses=DeidentificationOutput(many=True),
    )
    def get(self, request: Request, project_id: int) -> Response:
        """The originals behind the pseudonyms of the project's de-identified studies (site administrators
        only; every read is an audit event)."""
        project = project_for(request_user(request), project_id)
        rows = deidentification_mapping(
            actor=request_user(request), project=project, study_uid=request.query_params.get("study_uid")
        )
        return Response(DeidentificationOutput(rows, many=True).data)
