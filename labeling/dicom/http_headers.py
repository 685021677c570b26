"""Faster HTTP response header parsing for the web process's DICOMweb traffic (installed by config.wsgi).

``http.client`` (under ``requests`` and ``urllib3``) parses every response's header block with
``email.parser`` as if it were a whole message. For a ``multipart/related`` response — every WADO-RS frame
answer — that parser then prepares to split a body that is not there, compiling a regular expression for the
response's boundary; boundaries are unique per response, so the compiled pattern is never reused. Parsing one
frame answer's headers took 0.52 ms that way and 0.06 ms with ``headersonly=True`` (this project's 2-core
machine), against about 1.2 ms of CPU for the whole proxied frame. The result is the same message: the
block has no body.
"""

from __future__ import annotations

import email.parser
import http.client
from typing import IO, Any


def parse_headers(fp: IO[bytes], _class: Any = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """``http.client.parse_headers`` with ``headersonly=True``: same result, no body-parsing set-up."""
    headers = http.client._read_headers(fp)  # type: ignore[attr-defined]
    text = b"".join(headers).decode("iso-8859-1")
    message: http.client.HTTPMessage = email.parser.Parser(_class=_class).parsestr(text, headersonly=True)
    return message


def install() -> None:
    """Use ``parse_headers`` for every response of this process (idempotent)."""
    if hasattr(http.client, "_read_headers"):  # the helper it relies on (Python 3.11 to 3.14)
        http.client.parse_headers = parse_headers  # type: ignore[assignment]
