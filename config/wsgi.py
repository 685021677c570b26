"""WSGI entry point (gunicorn -c config/gunicorn.conf.py config.wsgi).

Frame requests the DICOMweb proxy has already authorised are streamed by ``FramesFastPath`` without the
Django stack; everything else is Django's. Response headers from the image server are parsed without
``email``'s multipart set-up (labeling.dicom.http_headers).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from labeling.api.dicomweb_fastpath import FramesFastPath  # noqa: E402 - needs the settings loaded above
from labeling.dicom import http_headers  # noqa: E402

http_headers.install()
application = FramesFastPath(django_application)
