"""One API class per operation. Each parses, asks ``permissions``, calls one service or selector, renders."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api import serializers as out
from labeling.api.common import paginated, request_user
from labeling.api.permissions import ADJUDICATOR, ADMIN, READER, project_for, require_any_admin, require_staff
from labeling.exceptions import InvalidInput, NotFound
from labeling.models import Case, GradingScheme, Study
from labeling.services.assignments import assignment_start, assignments_generate
from labeling.services.drafts import draft_save
from labeling.services.projects import (
    membership_add,
    membership_remove,
    project_create,
    project_delete,
    project_update,
)
from labeling.services.readings import reading_correct, reading_submit
from labeling.services.studies import case_create, case_delete, case_update, study_register


def _created(data: Any) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)


# --- authentication -------------------------------------------------------------------------------------


class CsrfApi(APIView):
    permission_classes = [AllowAny]

    @method_decorator(ensure_csrf_cookie)
    @extend_schema(responses=inline_serializer("Csrf", {"detail": serializers.CharField()}))
    def get(self, request: Request) -> Response:
        """Set the CSRF cookie a browser needs before it logs in."""
        return Response({"detail": "CSRF cookie set"})


class Credentials(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    roles = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


def _me(user: Any) -> dict[str, Any]:
    roles: dict[str, list[str]] = {}
    for membership in user.memberships.order_by("project_id", "role"):
        roles.setdefault(str(membership.project_id), []).append(membership.role)
    return {"id": user.pk, "username": user.username, "is_staff": user.is_staff, "roles": roles}


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @method_decorator(csrf_protect)
    @extend_schema(request=Credentials, responses=MeOutput)
    def post(self, request: Request) -> Response:
        """Start a browser session (needs the CSRF cookie and X-CSRFToken header)."""
        payload = Credentials(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(request._request, **payload.validated_data)
        if user is None:
            return Response({"detail": "wrong username or password"}, status=status.HTTP_400_BAD_REQUEST)
        login(request._request, user)
        return Response(_me(user))


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses=MeOutput)
    def get(self, request: Request) -> Response:
        """The logged-in user and their roles per project."""
        return Response(_me(request_user(request)))


class TokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        request=Credentials, responses=inline_serializer("TokenOut", {"token": serializers.CharField()})
    )
    def post(self, request: Request) -> Response:
        """Exchange username and password for a key, sent as ``Authorization: Token <key>``."""
        payload = Credentials(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(request._request, **payload.validated_data)
        if user is None:
            return Response({"detail": "wrong username or password"}, status=status.HTTP_400_BAD_REQUEST)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


# --- schemes and projects -------------------------------------------------------------------------------


class SchemeListApi(APIView):
    @extend_schema(responses=out.SchemeOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(out.SchemeOutput(GradingScheme.objects.all(), many=True).data)


class ProjectSettings(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True)
    readers_per_case = serializers.IntegerField(required=False, min_value=1, max_value=50)
    gold_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    repeat_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
    washout_days = serializers.IntegerField(required=False, min_value=0)
    washout_cases = serializers.IntegerField(required=False, min_value=0)
    adjudication_threshold = serializers.FloatField(required=False, min_value=0.01, max_value=1)
    contour_disagreement_mm = serializers.FloatField(required=False, min_value=0.1, max_value=100)
    ai_aided_reads = serializers.BooleanField(required=False)


class ProjectListApi(APIView):
    @extend_schema(responses=out.ProjectOutput(many=True))
    def get(self, request: Request) -> Response:
        """Projects the user holds a role in."""
        return Response(
            out.ProjectOutput(selectors.project_list_for_user(user=request_user(request)), many=True).data
        )


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
        return _created(out.ProjectOutput(project).data)


class ProjectDetailApi(APIView):
    @extend_schema(responses=out.ProjectOutput)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(out.ProjectOutput(project_for(request_user(request), project_id)).data)


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
        project_delete(
            actor=request_user(request), project=project_for(request_user(request), project_id, ADMIN)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipListApi(APIView):
    @extend_schema(responses=out.MembershipOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        return Response(out.MembershipOutput(project.memberships.select_related("user"), many=True).data)


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
        return _created(out.MembershipOutput(membership).data)


class MembershipRemoveApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, project_id: int, membership_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        membership_remove(actor=request_user(request), project=project, membership_id=membership_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- studies and cases ----------------------------------------------------------------------------------


class StudyListApi(APIView):
    @extend_schema(responses=out.StudyOutput(many=True))
    def get(self, request: Request) -> Response:
        require_any_admin(request_user(request))
        studies = Study.objects.prefetch_related("series__instances").order_by("id")
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
        return _created(out.StudyOutput(study).data)


class CaseListApi(APIView):
    @extend_schema(responses=out.CaseOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN, ADJUDICATOR)
        return paginated(request, self, selectors.case_list(project=project), out.CaseOutput)


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
        study = Study.objects.filter(study_uid=data.pop("study_uid")).first()
        if study is None:
            raise InvalidInput("no study with this UID has been imported or registered", field="study_uid")
        case = case_create(actor=request_user(request), project=project, study=study, **data)
        return _created(out.CaseOutput(case).data)


def _case_for(request: Request, project_id: int, case_id: int, *roles: str) -> Case:
    project = project_for(request_user(request), project_id, *roles)
    case = project.cases.select_related("study", "project__scheme").filter(pk=case_id).first()
    if case is None:
        raise NotFound("no such case")
    return case


class CaseDetailApi(APIView):
    @extend_schema(responses=out.CaseOutput)
    def get(self, request: Request, project_id: int, case_id: int) -> Response:
        return Response(out.CaseOutput(_case_for(request, project_id, case_id, ADMIN, ADJUDICATOR)).data)


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


class AssignmentListApi(APIView):
    @extend_schema(responses=out.AssignmentAdminOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request_user(request), project_id, ADMIN)
        return paginated(request, self, selectors.assignment_list(project=project), out.AssignmentAdminOutput)


class AssignmentGenerateApi(APIView):
    class AssignmentGenerateInput(serializers.Serializer):
        seed = serializers.IntegerField(required=False, default=0)
        readers_per_case = serializers.IntegerField(required=False, min_value=1)
        gold_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
        repeat_fraction = serializers.FloatField(required=False, min_value=0, max_value=1)
        washout_days = serializers.IntegerField(required=False, min_value=0)
        washout_cases = serializers.IntegerField(required=False, min_value=0)

    class AssignmentGenerateOutput(serializers.Serializer):
        created = serializers.IntegerField()
        created_repeats = serializers.IntegerField()
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
                "gold_cases": result.gold_cases,
                "loads": {str(k): v for k, v in result.loads.items()},
            }
        )


# --- reader ---------------------------------------------------------------------------------------------


class WorklistApi(APIView):
    class WorklistOutput(serializers.Serializer):
        progress = serializers.DictField(child=serializers.IntegerField())
        items = out.WorklistItemOutput(many=True)

    @extend_schema(responses=WorklistOutput)
    def get(self, request: Request, project_id: int) -> Response:
        """The reader's own cases that can be read now, and their progress."""
        project_for(request_user(request), project_id, READER)
        items = selectors.worklist_for_reader(reader=request_user(request), project_id=project_id)
        return Response(
            {
                "progress": selectors.worklist_progress(reader=request_user(request), project_id=project_id),
                "items": out.WorklistItemOutput(items, many=True).data,
            }
        )


class WorklistNextApi(APIView):
    @extend_schema(request=None, responses={200: out.AssignmentReaderOutput, 204: None})
    def post(self, request: Request, project_id: int) -> Response:
        """Open the next case: the one in progress, else the first open one; 204 when none is left."""
        project_for(request_user(request), project_id, READER)
        worklist = selectors.worklist_for_reader(reader=request_user(request), project_id=project_id)
        assignment = worklist.filter(status="in_progress").first() or worklist.first()
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment = assignment_start(assignment=assignment)
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment.pk
        )
        return Response(out.AssignmentReaderOutput(assignment).data)


class AssignmentDetailApi(APIView):
    @extend_schema(responses=out.AssignmentReaderOutput)
    def get(self, request: Request, assignment_id: int) -> Response:
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment_id
        )
        return Response(out.AssignmentReaderOutput(assignment).data)


class DraftOutput(serializers.Serializer):
    values = serializers.ListField(child=serializers.DictField())
    contours = serializers.ListField(child=serializers.DictField())
    updated_at = serializers.DateTimeField(allow_null=True)


class DraftDetailApi(APIView):
    @extend_schema(responses=DraftOutput)
    def get(self, request: Request, assignment_id: int) -> Response:
        """The reader's saved work on an assignment (empty when nothing was saved)."""
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment_id
        )
        draft = getattr(assignment, "draft", None)
        empty: dict[str, Any] = {"values": [], "contours": [], "updated_at": None}
        return Response(DraftOutput(draft).data if draft else empty)


class DraftSaveApi(APIView):
    class DraftSaveInput(serializers.Serializer):
        values = serializers.ListField(child=serializers.DictField(), required=False, default=list)
        contours = serializers.ListField(child=serializers.DictField(), required=False, default=list)

    @extend_schema(request=DraftSaveInput, responses=DraftOutput)
    def post(self, request: Request, assignment_id: int) -> Response:
        """Replace the draft with what the reader has entered so far."""
        payload = self.DraftSaveInput(data=request.data)
        payload.is_valid(raise_exception=True)
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment_id
        )
        return Response(DraftOutput(draft_save(assignment=assignment, **payload.validated_data)).data)


class AssignmentAiApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, assignment_id: int) -> Response:
        """The AI pre-read for an AI-aided assignment; any other assignment is a 404 (blinding)."""
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment_id
        )
        if not assignment.aided:
            raise NotFound("no AI output for this assignment")
        return Response(selectors.ai_output_for_case(case_id=assignment.case_id))


class ReadingInput(serializers.Serializer):
    values = serializers.ListField(child=serializers.DictField(), allow_empty=True)
    contours = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class ReadingSubmitApi(APIView):
    class ReadingSubmitInput(ReadingInput):
        duration_s = serializers.FloatField(required=False, min_value=0, allow_null=True)

    @extend_schema(request=ReadingSubmitInput, responses={201: out.ReadingOutput})
    def post(self, request: Request, assignment_id: int) -> Response:
        """Submit the reading (with contours) of an open assignment; twice is a 409."""
        payload = self.ReadingSubmitInput(data=request.data)
        payload.is_valid(raise_exception=True)
        assignment = selectors.assignment_get_for_reader(
            reader=request_user(request), assignment_id=assignment_id
        )
        reading = reading_submit(actor=request_user(request), assignment=assignment, **payload.validated_data)
        return _created(
            out.ReadingOutput(
                selectors.reading_get_for_reader(reader=request_user(request), reading_id=reading.pk)
            ).data
        )


class ReadingListApi(APIView):
    @extend_schema(responses=out.ReadingOutput(many=True))
    def get(self, request: Request) -> Response:
        """The user's own readings (``?project=`` to narrow)."""
        project_id = request.query_params.get("project")
        if project_id is not None and not project_id.isdigit():
            raise InvalidInput("must be a project id", field="project")
        readings = selectors.reading_list_for_reader(
            reader=request_user(request), project_id=int(project_id) if project_id else None
        )
        return paginated(request, self, readings, out.ReadingOutput)


class ReadingDetailApi(APIView):
    @extend_schema(responses=out.ReadingOutput)
    def get(self, request: Request, reading_id: int) -> Response:
        return Response(
            out.ReadingOutput(
                selectors.reading_get_for_reader(reader=request_user(request), reading_id=reading_id)
            ).data
        )


class ReadingCorrectApi(APIView):
    class ReadingCorrectInput(ReadingInput):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=ReadingCorrectInput, responses={201: out.ReadingOutput})
    def post(self, request: Request, reading_id: int) -> Response:
        """Supersede one of the user's readings with a correction; the original stays."""
        payload = self.ReadingCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        reading = selectors.reading_get_for_reader(reader=request_user(request), reading_id=reading_id)
        correction = reading_correct(actor=request_user(request), reading=reading, **payload.validated_data)
        return _created(
            out.ReadingOutput(
                selectors.reading_get_for_reader(reader=request_user(request), reading_id=correction.pk)
            ).data
        )


# --- audit ----------------------------------------------------------------------------------------------


class AuditListApi(APIView):
    @extend_schema(responses=out.AuditEventOutput(many=True))
    def get(self, request: Request) -> Response:
        """Audit events of the projects the user administers (all of them for staff); ``?project=``."""
        project_id = request.query_params.get("project")
        if project_id is not None:
            if not project_id.isdigit():
                raise InvalidInput("must be a project id", field="project")
            project_for(request_user(request), int(project_id), ADMIN)
        else:
            require_any_admin(request_user(request))
        events = selectors.audit_list_for_user(
            user=request_user(request), project_id=int(project_id) if project_id else None
        )
        return paginated(request, self, events, out.AuditEventOutput)
