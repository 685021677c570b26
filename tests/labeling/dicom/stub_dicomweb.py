"""A stand-in DICOMweb server for the proxy's tests (a boundary we do not own): every GET gets one frame."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FRAME = b"--b\r\nContent-Type: application/octet-stream\r\n\r\nFRAME\r\n--b--\r\n"
FRAME_TYPE = 'multipart/related; type="application/octet-stream"; boundary=b'


class StubDicomWeb(ThreadingHTTPServer):
    """Answers every GET with ``FRAME`` over HTTP/1.1 keep-alive and notes it in ``requests`` as (connection
    number, path). ``drop_reused``: the second request on a connection is read and left unanswered, the
    connection closed (what a server's idle timeout does when it crosses a reuse). ``stall_s``: every answer
    waits this long first."""

    daemon_threads = True

    def __init__(self, *, drop_reused: bool = False, stall_s: float = 0.0) -> None:
        self.requests: list[tuple[int, str]] = []
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1
                self.number, self.served = server.connections, 0

            def do_GET(self) -> None:
                server.requests.append((self.number, self.path))
                self.served += 1
                if drop_reused and self.served == 2:
                    self.close_connection = True
                    return
                time.sleep(stall_s)
                self.send_response(200)
                self.send_header("Content-Type", FRAME_TYPE)
                self.send_header("Content-Length", str(len(FRAME)))
                self.end_headers()
                self.wfile.write(FRAME)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        """Its DICOMweb root."""
        return f"http://127.0.0.1:{self.server_address[1]}/dicom-web"


@contextmanager
def serving(**kwargs: Any) -> Iterator[StubDicomWeb]:
    """A StubDicomWeb answering on a thread until the block ends."""
    server = StubDicomWeb(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
