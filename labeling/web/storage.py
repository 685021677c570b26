"""Static files written compressed as well (gzip and Brotli beside each file), for whitenoise to serve.

The front end's entry bundle and Cornerstone's chunk are megabytes of JavaScript (and WebAssembly): sent
as they are, the browser spends the first part of opening a case downloading them (issue 15, finding 12).
whitenoise's own compressed storage uses Brotli's slowest setting (quality 11: ~10 s per megabyte on this
machine's shared cores, in every ``collectstatic``); quality 6 is within a few per cent of its size in a
fraction of the time. File names are left as they are: Vite's build already puts a hash in each asset's
name, and ``index.html`` (served by ``labeling.web.views``) refers to those names.
"""

from __future__ import annotations

import gzip
from io import BytesIO
from typing import Any

import brotli
from whitenoise.compress import Compressor
from whitenoise.storage import CompressedStaticFilesStorage

BROTLI_QUALITY = 6
GZIP_LEVEL = 6


class FastCompressor(Compressor):
    """whitenoise's compressor at moderate settings: Brotli quality 6, gzip level 6."""

    @staticmethod
    def compress_brotli(data: bytes) -> bytes:
        return brotli.compress(data, quality=BROTLI_QUALITY)

    @staticmethod
    def compress_gzip(data: bytes) -> bytes:
        output = BytesIO()
        # mtime 0: the output depends on the content alone (as whitenoise's own)
        with gzip.GzipFile(filename="", mode="wb", fileobj=output, compresslevel=GZIP_LEVEL, mtime=0) as f:
            f.write(data)
        return output.getvalue()


class CompressedStaticStorage(CompressedStaticFilesStorage):
    """``collectstatic`` writes ``name.gz`` and ``name.br`` beside each compressible file."""

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return FastCompressor(**kwargs)
