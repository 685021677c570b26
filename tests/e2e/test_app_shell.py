"""Django serves the built front end's shell for client-side routes, and leaves the API and static files alone
(no browser needed)."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling.web import views


@pytest.fixture
def built(tmp_path, settings, monkeypatch):
    """A stand-in frontend/dist with an index.html."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><div id="app"></div><script src="/static/assets/x.js">'
    )
    settings.STATICFILES_DIRS = [tmp_path]
    monkeypatch.setattr(views, "_cached", None)
    return tmp_path


@pytest.mark.parametrize(
    "path", ["/", "/login", "/read/12", "/projects/3/adjudication/1/left/joint/sclerosis"]
)
def test_client_side_routes_get_the_shell_with_a_csrf_cookie(db, built, path):
    response = Client().get(path)
    assert response.status_code == 200
    assert b'<div id="app">' in response.content
    assert "csrftoken" in response.cookies
    assert response["Cache-Control"] == "no-cache"


def test_api_paths_are_not_swallowed_by_the_shell(db, built):
    assert Client().get("/api/no-such-endpoint/").status_code == 404
    assert Client().get("/static/assets/missing.js").status_code == 404


def test_without_a_build_the_shell_says_how_to_build_it(db, settings, tmp_path, monkeypatch):
    settings.STATICFILES_DIRS = []
    settings.STATIC_ROOT = tmp_path
    monkeypatch.setattr(views, "_cached", None)
    response = Client().get("/")
    assert response.status_code == 503
    assert b"make frontend" in response.content


def test_the_shell_only_answers_get(db, built):
    assert Client().post("/read/1").status_code in (403, 405)  # CSRF or method, never the shell


def test_collected_assets_are_served_compressed_and_cached_for_good(db, settings, tmp_path, monkeypatch):
    """collectstatic (labeling.web.storage) writes Brotli and gzip copies; whitenoise sends the one the browser
    accepts, and a Vite asset (hash in its name) is cached for good (issue 15, finding 12: the 1.8 MB bundle went
    uncompressed and was revalidated)."""
    from django.core.management import call_command

    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    script = "export const viewer = () => 'Cornerstone';\n" * 2000
    (dist / "assets" / "index-AbC123_x.js").write_text(script)
    (dist / "index.html").write_text('<script type="module" src="/static/assets/index-AbC123_x.js"></script>')
    settings.STATICFILES_DIRS = [dist]
    settings.STATIC_ROOT = tmp_path / "static"
    monkeypatch.setattr(views, "_cached", None)
    call_command("collectstatic", "--noinput", "-v", "0")
    collected = tmp_path / "static" / "assets"
    assert {p.name for p in collected.iterdir()} == {
        "index-AbC123_x.js",
        "index-AbC123_x.js.br",
        "index-AbC123_x.js.gz",
    }

    client = Client()
    brotli = client.get("/static/assets/index-AbC123_x.js", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert brotli.status_code == 200
    assert brotli["Content-Encoding"] == "br"
    assert int(brotli["Content-Length"]) < len(script) // 20
    assert "immutable" in brotli["Cache-Control"]
    gzip = client.get("/static/assets/index-AbC123_x.js", HTTP_ACCEPT_ENCODING="gzip")
    assert gzip["Content-Encoding"] == "gzip"
    plain = client.get("/static/assets/index-AbC123_x.js")
    assert "Content-Encoding" not in plain
    assert b"".join(plain.streaming_content).decode() == script
    # the shell names the same asset
    assert b"/static/assets/index-AbC123_x.js" in client.get("/read/1").content
