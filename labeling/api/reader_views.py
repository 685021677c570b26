"""Reader operations: worklist, next case, drafts, readings and corrections, AI output of aided reads.

A reader only ever reaches their own assignments and readings; anything else is a 404 (blinding)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api import serializers as out
from labeling.api.common import created, paginated, request_user
from labeling.api.permissions import READER, project_for
from labeling.exceptions import InvalidInput, NotFound
from labeling.services.assignments import assignment_start
from labeling.services.drafts import draft_save
from labeling.services.readings import reading_correct, reading_submit

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
        return created(
            out.ReadingOutput(
                selectors.reading_get_for_reader(
                    reader=request_user(request), reading_id=reading.pk, blinded=False
                )
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
        project_for(request_user(request), reading.project_id, READER)  # only current readers correct
        correction = reading_correct(actor=request_user(request), reading=reading, **payload.validated_data)
        return created(
            out.ReadingOutput(
                selectors.reading_get_for_reader(reader=request_user(request), reading_id=correction.pk)
            ).data
        )
