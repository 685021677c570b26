"""Admin operations: schemes, projects, members, studies, cases, assignments, audit log.

One API class per operation. Each parses, asks ``permissions``, calls one service or selector, renders."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api import serializers as out
from labeling.api.common import PaginatedApi, created, paginated, request_user
from labeling.api.permissions import (
    ADJUDICATOR,
    ADMIN,
    READER,
    project_for,
    project_for_unblinded,
    require_any_admin,
    require_staff,
)
from labeling.conditions import MAX_CONDITIONS
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import DEIDENTIFY_CHOICES, DEIDENTIFY_DATES_CHOICES, Case, GradingScheme, Project
from labeling.services.assignments import assignments_generate
from labeling.services.projects import (
    membership_add,
    membership_remove,
    project_create,
    project_delete,
    project_update,
)
from labeling.services.studies import case_create, case_delete, case_update, study_register

# --- schemes and projects -------------------------------------------------------------------------------


class SchemeListApi(APIView):
    @extend_schema(responses=out.SchemeOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(out.SchemeOutput(GradingScheme.objects.all(), many=True).data)


#: Bounds of the washout settings (ten years; more cases than a project holds): a larger number is a 400,
#: not a database integer overflow.
MAX_WASHOUT_DAYS = 3650
MAX_WASHOUT_CASES = 1_000_000


class ProjectSettings(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    readers_per_case = serializers.IntegerField(required=False, min_value=1, max_value=50)
    gold_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    repeat_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    washout_days = serializers.IntegerField(required=False, min_value=0, max_value=MAX_WASHOUT_DAYS)
    washout_cases = serializers.IntegerField(required=False, min_value=0, max_value=MAX_WASHOUT_CASES)
    adjudication_threshold = serializers.FloatField(required=False, min_value=0.01, max_value=1)
    contour_disagreement_mm = serializers.FloatField(required=False, min_value=0.1, max_value=100)
    ai_aided_reads = serializers.BooleanField(required=False)
    reader_study_design = serializers.ChoiceField(choices=Project.ReaderStudyDesign.choices, required=False)
    reader_study_conditions = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        max_length=MAX_CONDITIONS,
        help_text="the reader study's conditions in order (e.g. unaided, aided or t1_only, t1_stir); empty: "
        "unaided and aided when ai_aided_reads is on",
    )
    readers_may_adjudicate_own_cases = serializers.BooleanField(
        required=False, help_text="let adjudicators decide cases they read (off by default; audited)"
    )
    deidentify = serializers.ChoiceField(
        choices=DEIDENTIFY_CHOICES,
        required=False,
        help_text="de-identify imports (PS3.15 Annex E basic profile); site: the DEIDENTIFY_ON_IMPORT setting",
    )
    deidentify_dates = serializers.ChoiceField(
        choices=DEIDENTIFY_DATES_CHOICES,
        required=False,
        help_text="dates on import: keep, shift by a per-patient offset, or remove; site: DEIDENTIFY_DATES",
    )
    deidentify_clean_descriptors = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="Clean Descriptors Option; null: DEIDENTIFY_CLEAN_DESCRIPTORS",
    )


class ProjectListApi(APIView):
    @extend_schema(responses=out.PROJECTS_FOR_CALLER)
    def get(self, request: Request) -> Response:
        """Projects the user holds a role in (each as ``project_output`` shows it to them)."""
        user = request_user(request)
        return Response([out.project_output(p, user) for p in selectors.project_list_for_user(user=user)])


class ProjectCreateApi(APIView):
    class ProjectCreateInput(ProjectSettings):
        name = serializers.CharField(max_length=200)
        scheme = serializers.CharField(help_text="scheme name, e.g. mri_sij")
        scheme_version = serializers.IntegerField(required=False, help_text="default: the newest")

    @extend_schema(request=ProjectCreateInput, responses={201: out.ProjectOutput})
    def post(self, request: Request) -> Response:
        require_staff(request_user(request))
        payload = self.ProjectCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        schemes = GradingScheme.objects.filter(name=data.pop("scheme"))
        if "scheme_version" in data:
            schemes = schemes.filter(version=data.pop("scheme_version"))
        scheme = schemes.order_by("-version").first()
        if scheme is None:
            raise InvalidInput("no such grading scheme (version)", field="scheme")
        project = project_create(actor=request_user(request), name=data.pop("name"), scheme=scheme, **data)
        return created(out.ProjectOutput(project).data)


class ProjectDetailApi(APIView):
    @extend_schema(responses=out.PROJECT_FOR_CALLER)
    def get(self, request: Request, project_id: int) -> Response:
        """The project; readers who hold no other role see its name and scheme, not its study design."""
        user = request_user(request)
        return Response(out.project_output(project_for(user, project_id), user))


class ProjectUpdateApi(APIView):
    class ProjectUpdateInput(ProjectSettings):
        name = serializers.CharField(max_length=200, required=False)

    @extend_schema(request=ProjectUpdateInput, responses=out.ProjectOutput)
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.ProjectUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        project = project_update(actor=request_user(request), project=project, **payload.validated_data)
        return Response(out.ProjectOutput(project).data)


class ProjectDeleteApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, project_id: int) -> Response:
        """Delete softly (audited): hidden from lists, refuses new work; its records stay."""
        project_delete(
            actor=request_user(request), project=project_for(request_user(request), project_id, ADMIN)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipListApi(APIView):
    @extend_schema(responses=out.MembershipOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        return Response(out.MembershipOutput(selectors.membership_list(project=project), many=True).data)


class MembershipAddApi(APIView):
    class MembershipAddInput(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=[READER, ADJUDICATOR, ADMIN])

    @extend_schema(request=MembershipAddInput, responses={201: out.MembershipOutput})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.MembershipAddInput(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = membership_add(actor=request_user(request), project=project, **payload.validated_data)
        return created(out.MembershipOutput(membership).data)


class MembershipRemoveApi(APIView):
    @extend_schema(request=None, responses=out.MembershipRemoveOutput)
    def post(self, request: Request, project_id: int, membership_id: int) -> Response:
        """Remove a role; removing a reader cancels their open assignments (the answer says how many)."""
        project = project_for(request_user(request), project_id, ADMIN)
        membership = project.memberships.select_related("user").filter(pk=membership_id).first()
        if membership is None:
            raise NotFound("no such membership")
        cancelled = membership_remove(
            actor=request_user(request), project=project, membership_id=membership.pk
        )
        return Response(
            {
                "username": membership.user.get_username(),
                "role": membership.role,
                "cancelled_assignments": cancelled,
            }
        )


# --- studies and cases ----------------------------------------------------------------------------------


class StudyListApi(PaginatedApi):
    @extend_schema(
        responses=out.StudyOutput(many=True),
        parameters=[
            OpenApiParameter("modality", str, description="only studies of this DICOM modality (MR, CT)")
        ],
    )
    def get(self, request: Request) -> Response:
        """Staff: every study of the site. A project admin: their projects' studies and the ones they registered."""
        require_any_admin(request_user(request))
        studies = (
            selectors.study_list_for_user(user=request_user(request))
            .prefetch_related("series__instances")
            .order_by("id")
        )
        modality = request.query_params.get("modality")
        if modality:
            studies = studies.filter(modality=modality.upper())
        return paginated(request, self, studies, out.StudyOutput)


class StudyRegisterApi(APIView):
    class StudyRegisterInput(serializers.Serializer):
        class SeriesInput(serializers.Serializer):  # type: ignore[misc]
            series_uid = serializers.CharField(max_length=64)
            modality = serializers.CharField(max_length=16)
            description = serializers.CharField(max_length=200, required=False, allow_blank=True)
            frame_of_reference_uid = serializers.CharField(max_length=64, required=False, allow_blank=True)

        study_uid = serializers.CharField(max_length=64)
        modality = serializers.CharField(max_length=16)
        patient_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
        description = serializers.CharField(max_length=200, required=False, allow_blank=True)
        series = SeriesInput(many=True, required=False)

    @extend_schema(request=StudyRegisterInput, responses={201: out.StudyOutput})
    def post(self, request: Request) -> Response:
        """Record a study reference by UID (its pixels stay in the DICOM store)."""
        require_any_admin(request_user(request))
        payload = self.StudyRegisterInput(data=request.data)
        payload.is_valid(raise_exception=True)
        study = study_register(actor=request_user(request), source="api", **payload.validated_data)
        return created(out.StudyOutput(study).data)


class CaseListApi(PaginatedApi):
    @extend_schema(responses=out.CaseOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN, ADJUDICATOR)
        serializer = out.CaseBlindedOutput if _blinded(request, project) else out.CaseOutput
        return paginated(request, self, selectors.case_list(project=project), serializer)


class CaseCreateApi(APIView):
    class CaseCreateInput(serializers.Serializer):
        study_uid = serializers.CharField(max_length=64)
        label = serializers.CharField(max_length=100, required=False, allow_blank=True)  # type: ignore[assignment]
        is_gold = serializers.BooleanField(required=False, default=False)
        reference = serializers.JSONField(required=False, allow_null=True, default=None)

    @extend_schema(request=CaseCreateInput, responses={201: out.CaseOutput})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.CaseCreateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        uid = data.pop("study_uid")
        study = selectors.study_list_for_user(user=request_user(request)).filter(study_uid=uid).first()
        if study is None:  # unknown, or another project's: the same answer, so existence is not confirmed
            raise InvalidInput("no study with this UID has been imported or registered", field="study_uid")
        case = case_create(actor=request_user(request), project=project, study=study, **data)
        return created(out.CaseOutput(case).data)


def _blinded(request: Request, project: Project) -> bool:
    return selectors.is_blinded(user=request_user(request), project_id=project.pk)


def _case_for(request: Request, project_id: int, case_id: int, *roles: str) -> Case:
    project = project_for(request_user(request), project_id, *roles)
    case = project.cases.select_related("study", "project__scheme").filter(pk=case_id).first()
    if case is None:
        raise NotFound("no such case")
    return case


class CaseDetailApi(APIView):
    @extend_schema(responses=out.CaseOutput)
    def get(self, request: Request, project_id: int, case_id: int) -> Response:
        case = _case_for(request, project_id, case_id, ADMIN, ADJUDICATOR)
        serializer = out.CaseBlindedOutput if _blinded(request, case.project) else out.CaseOutput
        return Response(serializer(case).data)


class CaseUpdateApi(APIView):
    class CaseUpdateInput(serializers.Serializer):
        label = serializers.CharField(max_length=100, required=False, allow_blank=True)  # type: ignore[assignment]
        is_gold = serializers.BooleanField(required=False)
        reference = serializers.JSONField(required=False, allow_null=True)

    @extend_schema(request=CaseUpdateInput, responses=out.CaseOutput)
    def post(self, request: Request, project_id: int, case_id: int) -> Response:
        case = _case_for(request, project_id, case_id, ADMIN)
        payload = self.CaseUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        return Response(
            out.CaseOutput(case_update(actor=request_user(request), case=case, **payload.validated_data)).data
        )


class CaseDeleteApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, project_id: int, case_id: int) -> Response:
        case_delete(actor=request_user(request), case=_case_for(request, project_id, case_id, ADMIN))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- assignments ----------------------------------------------------------------------------------------


class AssignmentListApi(PaginatedApi):
    @extend_schema(responses=out.AssignmentAdminOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        # sessions and repeat links would tell a reading admin which of their own cases are repeats
        project = project_for_unblinded(request_user(request), project_id, ADMIN)
        return paginated(request, self, selectors.assignment_list(project=project), out.AssignmentAdminOutput)


class AssignmentGenerateApi(APIView):
    class AssignmentGenerateInput(serializers.Serializer):
        seed = serializers.IntegerField(required=False, default=0)
        readers_per_case = serializers.IntegerField(required=False, min_value=1, max_value=50)
        gold_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
        repeat_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
        washout_days = serializers.IntegerField(required=False, min_value=0, max_value=MAX_WASHOUT_DAYS)
        washout_cases = serializers.IntegerField(required=False, min_value=0, max_value=MAX_WASHOUT_CASES)

    class AssignmentGenerateOutput(serializers.Serializer):
        created = serializers.IntegerField()
        created_repeats = serializers.IntegerField()
        created_crossover = serializers.IntegerField(help_text="aided reads planned for a crossover study")
        gold_cases = serializers.IntegerField()
        loads = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(request=AssignmentGenerateInput, responses=AssignmentGenerateOutput)
    def post(self, request: Request, project_id: int) -> Response:
        """Top up assignments (k readers per case, gold, blinded repeats); deterministic and idempotent."""
        project = project_for(request_user(request), project_id, ADMIN)
        payload = self.AssignmentGenerateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        result = assignments_generate(actor=request_user(request), project=project, **payload.validated_data)
        return Response(
            {
                "created": result.created,
                "created_repeats": result.created_repeats,
                "created_crossover": result.created_crossover,
                "gold_cases": result.gold_cases,
                "loads": {str(k): v for k, v in result.loads.items()},
            }
        )


# --- audit ----------------------------------------------------------------------------------------------


class AuditListApi(PaginatedApi):
    @extend_schema(responses=out.AuditEventOutput(many=True))
    def get(self, request: Request) -> Response:
        """Audit events of the projects the user administers (all of them for staff); ``?project=``."""
        project_id = request.query_params.get("project")
        if project_id is not None:
            if not project_id.isdigit():
                raise InvalidInput("must be a project id", field="project")
            project_for_unblinded(request_user(request), int(project_id), ADMIN)
        else:
            require_any_admin(request_user(request))
        events = selectors.audit_list_for_user(
            user=request_user(request), project_id=int(project_id) if project_id else None
        )
        return paginated(request, self, events, out.AuditEventOutput)
