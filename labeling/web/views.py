"""One view: the built ``index.html`` for ``/`` and every client-side route; assets come from static files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

NOT_BUILT = (
    "<!doctype html><title>Concord</title><h1>The front end is not built</h1>"
    "<p>Run <code>make frontend</code> (<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>).</p>"
)


def _index_path() -> Path | None:
    found = finders.find("index.html")  # frontend/dist via STATICFILES_DIRS
    if found:
        return Path(found if isinstance(found, str) else found[0])
    collected = Path(settings.STATIC_ROOT) / "index.html"  # after collectstatic, without the source tree
    return collected if collected.is_file() else None


_cached: str | None = None


def _index_html() -> str | None:
    """The shell's HTML; read once per process, except with DEBUG (a rebuild shows without a restart)."""
    global _cached
    if _cached is not None and not settings.DEBUG:
        return _cached
    path = _index_path()
    html = path.read_text(encoding="utf-8") if path else None
    if html is not None and not settings.DEBUG:
        _cached = html
    return html


@require_GET
@ensure_csrf_cookie
def app_shell(request: HttpRequest) -> HttpResponse:
    html = _index_html()
    if html is None:
        return HttpResponse(NOT_BUILT, status=503)
    response = HttpResponse(html)
    response["Cache-Control"] = "no-cache"
    return response
