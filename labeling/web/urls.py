"""Client-side routes → the app shell. Mounted last, so the API, admin, static files and DICOMweb win."""

from django.urls import re_path

from labeling.web.views import app_shell

urlpatterns = [
    re_path(r"^(?!api/|admin/|static/|dicomweb/|media/).*$", app_shell, name="app-shell"),
]
