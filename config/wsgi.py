"""WSGI entry point (gunicorn -c config/gunicorn.conf.py config.wsgi).

Frame requests the DICOMweb proxy has already authorised are streamed by ``FramesFastPath`` without the
Django stack; everything else is Django's. Response headers from the image server are parsed without
``email``'s multipart set-up (labeling.dicom.http_headers).

The URLconf (and with it every view, serializer and the DICOMweb proxy) is imported here, when the worker
starts, not in its first request: each gunicorn worker's first request would otherwise pay ~0.3–1 s of
imports, and a reader opening a case just after a restart meets four fresh workers at once.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from labeling.api.dicomweb_fastpath import FramesFastPath  # noqa: E402 - needs the settings loaded above
from labeling.dicom import http_headers  # noqa: E402

http_headers.install()


def _preload_urlconf() -> None:
    from django.urls import get_resolver

    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018 - imports the URLconf and every view it names
    resolver.reverse_dict  # noqa: B018 - and builds the reverse lookup, as the first request would


_preload_urlconf()
application = FramesFastPath(django_application)
