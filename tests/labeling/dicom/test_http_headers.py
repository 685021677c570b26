"""labeling.dicom.http_headers: the same header message as http.client's own parser, for any response."""

from __future__ import annotations

import http.client
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from labeling.dicom import http_headers

STDLIB_PARSE = http.client.parse_headers
BLOCKS = [
    b'Content-Type: multipart/related; type="application/octet-stream"; boundary=ab-12\r\n'
    b"Content-Length: 524842\r\nConnection: keep-alive\r\n\r\n",
    b"Content-Type: application/dicom+json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    b"X-Folded: one\r\n two\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"Content-Type: text/plain\r\n\r\n",
]


@pytest.mark.parametrize("block", BLOCKS)
def test_the_same_headers_as_the_standard_parser(block: bytes) -> None:
    assert STDLIB_PARSE is not http_headers.parse_headers
    ours = http_headers.parse_headers(io.BytesIO(block))
    theirs = STDLIB_PARSE(io.BytesIO(block))
    assert ours.items() == theirs.items()
    assert ours.get_all("Set-Cookie") == theirs.get_all("Set-Cookie")
    assert ours.get_content_type() == theirs.get_content_type()
    assert ours.get_param("boundary") == theirs.get_param("boundary")


def test_installed_it_serves_a_real_multipart_response(monkeypatch) -> None:
    body = (
        b"--ab-12\r\nContent-Type: application/octet-stream\r\n\r\n"
        + bytes(range(256)) * 64
        + b"\r\n--ab-12--\r\n"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header(
                "Content-Type", 'multipart/related; type="application/octet-stream"; boundary=ab-12'
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setattr(http.client, "parse_headers", http.client.parse_headers)  # undone after the test
    http_headers.install()
    assert http.client.parse_headers is http_headers.parse_headers
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{server.server_port}/frames/1")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status == 200 and response.data == body
    assert response.headers["Content-Type"].endswith("boundary=ab-12")
