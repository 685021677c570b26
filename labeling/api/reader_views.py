"""Reader operations: worklist, next case, drafts, readings and corrections, AI output of aided reads.

A reader only ever reaches their own assignments and readings; anything else is a 404 (blinding). Readers
address an assignment by its opaque ``key`` and a reading by that key and its version, never by a case id,
label or study UID; what they receive names the case by the assignment's pseudonym and its images by the
assignment's pseudonymous UIDs (contours are mapped to the stored UIDs on the way in and back on the way out).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api import serializers as out
from labeling.api.common import PaginatedApi, created, paginated, request_user
from labeling.api.permissions import READER, project_for
from labeling.dicom.pseudonyms import UidMap
from labeling.exceptions import Conflict, InvalidInput, NotFound
from labeling.models import Assignment, Draft
from labeling.services.assignments import assignment_start
from labeling.services.drafts import draft_save
from labeling.services.identity import assignment_uids, contours_to_pseudonymous, contours_to_stored
from labeling.services.readings import reading_correct, reading_submit

# --- reader ---------------------------------------------------------------------------------------------


class WorklistApi(APIView):
    class WorklistOutput(serializers.Serializer):
        progress = serializers.DictField(child=serializers.IntegerField())
        items = out.WorklistItemOutput(many=True)

    @extend_schema(responses=WorklistOutput)
    def get(self, request: Request, project_id: int) -> Response:
        """The reader's own cases that can be read now, and their progress."""
        reader = request_user(request)
        project_for(reader, project_id, READER)
        rows = selectors.worklist_rows_for_reader(reader=reader, project_id=project_id)
        progress = selectors.worklist_progress(reader=reader, project_id=project_id, available=len(rows))
        return Response({"progress": progress, "items": [out.worklist_item(row) for row in rows]})


class DraftOutput(serializers.Serializer):
    values = out.ValueRowsField()
    contours = out.ContourRowsField()
    updated_at = serializers.DateTimeField(allow_null=True)


class WorklistNextApi(APIView):
    class NextCaseOutput(out.AssignmentReaderOutput):
        """The case data of the assignment opened, as GET /api/assignments/{key}/ answers it, with its draft."""

        draft = DraftOutput(help_text="the reader's saved work on it, as GET …/draft/ answers it")

        class Meta(out.AssignmentReaderOutput.Meta):
            fields = [*out.AssignmentReaderOutput.Meta.fields, "draft"]

    @extend_schema(request=None, responses={200: NextCaseOutput, 204: None})
    def post(self, request: Request, project_id: int) -> Response:
        """Open the next case: the one in progress, else the first open one; 204 when none is left. With its
        draft, which the reading view then need not ask for."""
        project = project_for(request_user(request), project_id, READER)  # with its scheme
        assignment = selectors.worklist_next_for_reader(reader=request_user(request), project_id=project_id)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment.project = project
        assignment = assignment_start(assignment=assignment)
        case = dict(out.AssignmentReaderOutput(assignment).data)
        # the UID map the serializer built for the case's series maps the draft's contours too
        case["draft"] = _draft_output(
            assignment, getattr(assignment, "draft", None), out.reader_uids(assignment)
        )
        return Response(case)


def _mine(request: Request, key: str) -> Assignment:
    return selectors.assignment_get_for_reader(reader=request_user(request), key=key)


class AssignmentDetailApi(APIView):
    @extend_schema(responses=out.AssignmentReaderOutput)
    def get(self, request: Request, key: str) -> Response:
        """The case data of the reader's assignment ``key`` (its study under the assignment's own UIDs)."""
        return Response(out.AssignmentReaderOutput(_mine(request, key)).data)


def _draft_output(assignment: Assignment, draft: Draft | None, uids: UidMap | None = None) -> dict[str, Any]:
    """The draft as its reader sees it: contours under the assignment's pseudonymous UIDs (``uids``: the
    assignment's map when the caller built it already)."""
    if draft is None:
        return {"values": [], "contours": [], "updated_at": None}
    data = dict(DraftOutput(draft).data)
    if data["contours"]:
        data["contours"] = contours_to_pseudonymous(uids or assignment_uids(assignment), data["contours"])
    return data


class DraftDetailApi(APIView):
    @extend_schema(responses=DraftOutput)
    def get(self, request: Request, key: str) -> Response:
        """The reader's saved work on an assignment (empty when nothing was saved)."""
        assignment = _mine(request, key)
        return Response(_draft_output(assignment, getattr(assignment, "draft", None)))


class DraftSaveApi(APIView):
    class DraftSaveInput(serializers.Serializer):
        values = out.ValueRowsField(required=False, default=list)
        contours = out.ContourRowsField(required=False, default=list)

    @extend_schema(request=DraftSaveInput, responses=DraftOutput)
    def post(self, request: Request, key: str) -> Response:
        """Replace the draft with what the reader has entered so far."""
        payload = self.DraftSaveInput(data=request.data)
        payload.is_valid(raise_exception=True)
        assignment = _mine(request, key)
        contours = payload.validated_data["contours"]
        uids = assignment_uids(assignment) if contours else None  # nothing to map: no need to build it
        if uids is not None:
            contours = contours_to_stored(uids, contours)
        draft = draft_save(assignment=assignment, values=payload.validated_data["values"], contours=contours)
        return Response(_draft_output(assignment, draft, uids))


class AssignmentAiApi(APIView):
    @extend_schema(responses=out.AI_PREDICTIONS_SCHEMA)
    def get(self, request: Request, key: str) -> Response:
        """The AI pre-read for an AI-aided assignment; any other assignment is a 404 (blinding). Each kind's
        declared fields only: nothing that names the case, its study or a file."""
        assignment = _mine(request, key)
        if not assignment.aided:
            raise NotFound("no AI output for this assignment")
        return Response(out.ai_predictions_output(selectors.ai_output_for_case(case_id=assignment.case_id)))


class ReadingInput(serializers.Serializer):
    values = out.ValueRowsField(allow_empty=True)
    contours = out.ContourRowsField(
        required=False,
        default=list,
        help_text="series and images named by the assignment's pseudonymous UIDs",
    )


class ReadingSubmitApi(APIView):
    class ReadingSubmitInput(ReadingInput):
        duration_s = serializers.FloatField(required=False, min_value=0, allow_null=True)

    @extend_schema(request=ReadingSubmitInput, responses={201: out.ReadingOutput})
    def post(self, request: Request, key: str) -> Response:
        """Submit the reading (with contours) of an open assignment; twice is a 409."""
        payload = self.ReadingSubmitInput(data=request.data)
        payload.is_valid(raise_exception=True)
        assignment = _mine(request, key)
        data = payload.validated_data
        uids = assignment_uids(assignment) if data["contours"] else None
        if uids is not None:
            data["contours"] = contours_to_stored(uids, data["contours"])
        reading = reading_submit(actor=request_user(request), assignment=assignment, **data)
        reading = selectors.reading_submitted_for_reader(reader=request_user(request), reading=reading)
        context = {"uids": {assignment.pk: uids}} if uids is not None else {}
        return created(out.ReadingOutput(reading, context=context).data)


class ReadingListApi(PaginatedApi):
    @extend_schema(responses=out.ReadingOutput(many=True))
    def get(self, request: Request) -> Response:
        """The user's own readings (``?project=`` to narrow), less those of a case they are still to read
        again (a blinded repeat, an aided read): those appear once that read is submitted."""
        project_id = request.query_params.get("project")
        if project_id is not None and not project_id.isdigit():
            raise InvalidInput("must be a project id", field="project")
        readings = selectors.reading_list_for_reader(
            reader=request_user(request), project_id=int(project_id) if project_id else None
        )
        return paginated(request, self, readings, out.ReadingOutput)


class ReadingDetailApi(APIView):
    @extend_schema(responses=out.ReadingOutput)
    def get(self, request: Request, key: str, version: int) -> Response:
        """Version ``version`` of the reader's reading of assignment ``key``."""
        reading = selectors.reading_get_for_reader(reader=request_user(request), key=key, version=version)
        return Response(out.ReadingOutput(reading).data)


class ReadingCorrectApi(APIView):
    class ReadingCorrectInput(ReadingInput):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=ReadingCorrectInput, responses={201: out.ReadingOutput})
    def post(self, request: Request, key: str, version: int) -> Response:
        """Supersede version ``version`` of the reader's reading with a correction (the next version); the
        original stays. Only the newest version can be corrected: an older one is a 409 (stale version)."""
        payload = self.ReadingCorrectInput(data=request.data)
        payload.is_valid(raise_exception=True)
        user = request_user(request)
        reading = selectors.reading_get_for_reader(reader=user, key=key, version=version)
        project_for(user, reading.project_id, READER)  # only current readers correct
        if hasattr(reading, "superseded_by"):
            raise Conflict(f"version {version} is stale: correct the newest version of this reading")
        data = payload.validated_data
        data["contours"] = contours_to_stored(assignment_uids(reading.assignment), data["contours"])
        reading_correct(actor=user, reading=reading, **data)
        correction = selectors.reading_get_for_reader(reader=user, key=key, version=version + 1)
        return created(out.ReadingOutput(correction).data)
