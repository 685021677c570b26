"""The DICOMweb proxy's pooled connections to the image server: a keep-alive connection the server closes as
it is reused costs one more try, never an error; a server that does not answer is not asked twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from labeling.dicom.errors import DicomStoreUnavailable
from labeling.dicom.proxy import pooled_session, stream_get
from tests.labeling.dicom.stub_dicomweb import FRAME, StubDicomWeb, serving


@pytest.fixture
def serve() -> Iterator[Any]:
    with ExitStack() as stack:
        yield lambda **kwargs: stack.enter_context(serving(**kwargs))


def get(server: StubDicomWeb, path: str, timeout_s: float = 5.0) -> bytes:
    return stream_get(pooled_session(), server.url, path, accept="*/*", timeout_s=timeout_s).read()


def test_a_connection_closed_as_it_is_reused_is_tried_again_on_a_new_one(serve):
    """Before: the second GET raised DicomStoreUnavailable (a 502 "image server unavailable" to the reader)."""
    server = serve(drop_reused=True)
    assert get(server, "studies/1/series/2/instances/3/frames/1") == FRAME
    assert get(server, "studies/1/series/2/instances/4/frames/1") == FRAME
    frame_4 = "/dicom-web/studies/1/series/2/instances/4/frames/1"
    assert server.requests == [
        (1, "/dicom-web/studies/1/series/2/instances/3/frames/1"),
        (1, frame_4),  # the pooled connection: read, closed unanswered
        (2, frame_4),  # once more, on a new connection
    ]


def test_a_server_that_does_not_answer_in_time_is_asked_once(serve):
    server = serve(stall_s=1.0)
    started = time.monotonic()
    with pytest.raises(DicomStoreUnavailable):
        get(server, "studies/1/series/2/metadata", timeout_s=0.3)
    assert time.monotonic() - started < 0.9 and len(server.requests) == 1


def test_a_server_that_is_down_fails_at_once(serve):
    server = serve()
    url = server.url
    server.shutdown()
    server.server_close()
    started = time.monotonic()
    with pytest.raises(DicomStoreUnavailable):
        stream_get(pooled_session(), url, "studies", accept="*/*", timeout_s=5.0)
    assert time.monotonic() - started < 0.5


def test_the_frames_fast_path_tries_a_closed_connection_again_too(serve, world, settings):
    from io import BytesIO

    from rest_framework.authtoken.models import Token

    from labeling.api.dicomweb_auth import decisions
    from labeling.api.dicomweb_fastpath import FramesFastPath

    server = serve(drop_reused=True)
    settings.DICOMWEB_URL = server.url
    settings.DICOMWEB_AUTH_CACHE_S = 60
    token = Token.objects.get_or_create(user=world.reader)[0]
    decisions.clear()
    decisions.put(("study", world.reader.pk, "1.2", "3.4"), True)  # as if Django had just authorised it
    decisions.put(("token", token.key), (world.reader, token))
    app = FramesFastPath(lambda environ, start_response: pytest.fail("fell through to Django"))
    try:
        answer: dict[str, str] = {}
        for sop in ("5.6", "5.7"):
            answer.clear()
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": f"/dicomweb/studies/1.2/series/3.4/instances/{sop}/frames/1",
                "QUERY_STRING": "",
                "HTTP_AUTHORIZATION": f"Token {token.key}",
                "wsgi.input": BytesIO(),
            }
            body = b"".join(app(environ, lambda status, headers: answer.update(status=status)))
            assert answer["status"] == "200 OK" and body == FRAME, sop
    finally:
        decisions.clear()
    assert [number for number, _ in server.requests] == [1, 1, 2]
