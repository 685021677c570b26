"""Browser tests: a real gunicorn + Celery worker against the pytest-django test database, driven by Playwright
in Debian's Chromium (never ``playwright install``). With CI=true a missing browser or front-end build fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.seed import PASSWORD, Seeded, seed, write_phantoms
from tests.labeling.processes import (
    ROOT,
    celery_worker_cmd,
    free_port,
    http_up,
    process_env,
    running,
    wait_until,
)
from tests.services import missing_service

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
DIST = ROOT / "frontend" / "dist" / "index.html"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class Site:
    base: str
    data: Seeded
    log_dir: Path

    def api(self, username: str) -> requests.Session:
        """A logged-in API session (session cookie + CSRF header), for set-up and checks."""
        s = requests.Session()
        s.get(f"{self.base}/api/auth/csrf/", timeout=10)
        s.headers["X-CSRFToken"] = s.cookies["csrftoken"]
        s.headers["Referer"] = f"{self.base}/"
        r = s.post(
            f"{self.base}/api/auth/login/", json={"username": username, "password": PASSWORD}, timeout=10
        )
        r.raise_for_status()
        s.headers["X-CSRFToken"] = s.cookies["csrftoken"]
        return s


def live_connection() -> None:
    """Replace this thread's database connection when it is dead: the clean-up of an earlier module's site
    ends every other connection to the test database, and a module that uses the ORM on this thread must not
    start from one it ended (e2e errors 'terminating connection due to administrator command')."""
    from django.db import connection

    if connection.connection is not None and not connection.is_usable():
        connection.close()


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory, request) -> Iterator[Site]:
    """Seeded test database + web server (gunicorn, threads) + Celery workers (default and gpu queues), for
    the whole module; a module's ``SITE_ENV`` dict adds to their environment (e.g. an image server that is
    down)."""
    if not CHROMIUM.is_file():
        missing_service(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not DIST.is_file() or not AXE.is_file():
        missing_service("the front end is not built (make frontend)")
    from django.core.management import call_command

    tmp = tmp_path_factory.mktemp("e2e")
    phantoms = tmp_path_factory.getbasetemp() / "e2e-phantoms"
    write_phantoms(phantoms)
    # The store's index, as an import would have left it (make demo's import writes through the store): the
    # phantoms are written as plain files, and the web process's first DICOMweb request built it instead,
    # 1-2 s (7 s at high load) inside test_1's first-image figure (test_1b's flakes, issue 15 finding 12).
    from labeling.dicom.local import LocalFolderStore

    LocalFolderStore(phantoms).reindex()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = process_env(
        CONCORD_VAR_DIR=str(tmp / "var"),
        DICOM_FOLDER=str(phantoms),
        CONSENSUS_DEBOUNCE_S="0.5",
        DEBUG="false",
        **getattr(request.module, "SITE_ENV", {}),
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    # Playwright's sync API runs an event loop on this thread; pytest-django's per-test transaction is sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with django_db_blocker.unblock():
        from django.db import connection as main_connection

        live_connection()
        data = seed(phantoms)

        main_pid = main_connection.connection.info.backend_pid  # this thread's own, closed by pytest-django
        try:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            web = [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--worker-class",
                "gthread",
                "--timeout",
                "60",
            ]
            with (
                running(web, env, tmp / "web.log"),
                running(celery_worker_cmd("default"), env, tmp / "worker.log"),
                # training and AI pre-reads, apart so that a run never holds up a consensus refit
                running(celery_worker_cmd("gpu"), env, tmp / "worker-gpu.log"),
            ):
                wait_until(lambda: http_up(f"{base}/api/auth/csrf/"), timeout_s=60, what="the web server")
                yield Site(base, data, tmp)
        finally:
            # Playwright's sync API leaves an event loop on this thread, so Django refuses ORM calls here.
            def flush() -> None:
                from django.db import connection, connections

                call_command("flush", interactive=False, verbosity=0)
                # The stopped server and worker have let go; what is left is the connection the tests opened
                # while Playwright's event loop ran (asgiref keeps it apart from this thread's, and nothing
                # would close it): end it so that pytest-django can drop the test database.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                        [main_pid],
                    )
                connections.close_all()

            with ThreadPoolExecutor(1) as pool:
                pool.submit(flush).result()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(site: Site, browser: Any):
    """``new_page(username)`` → a logged-in page in a fresh context; console errors are collected."""
    contexts = []

    def make(username: str | None, viewport: tuple[int, int] = (1400, 860)) -> Any:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("console", lambda m: "[concord]" in m.text and print(f"  browser: {m.text}"))
        if username:
            page.goto(f"{site.base}/login")
            page.fill("#username", username)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{site.base}/")
        return page

    yield make
    for c in contexts:
        c.close()


def project_create(
    site: Site, api: requests.Session, fields: dict[str, Any], readers: Sequence[str] = ("reader1", "reader2")
) -> int:
    """Create a project with ``fields`` through the API as ``api``'s user, add ``readers`` to it as readers;
    return its id."""
    created = api.post(f"{site.base}/api/projects/create/", json=fields, timeout=10)
    assert created.status_code == 201, created.text
    project = int(created.json()["id"])
    for name in readers:
        r = api.post(
            f"{site.base}/api/projects/{project}/members/add/",
            json={"username": name, "role": "reader"},
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text
    return project


def log_in_through_the_form(page: Any, username: str) -> None:
    """Type the credentials key by key into the login form and press Enter, as a person does."""
    page.wait_for_selector("#username")
    page.click("#username")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def click_mm(page: Any, point: list[float]) -> None:
    """Click the first pane at a patient position (mm), through the viewer's own world → canvas mapping."""
    x, y = page.evaluate(
        "(p) => { const v = window.__concordViewer; const pane = v.panes[0];"
        " const [x, y] = v.toCanvas(pane, p); const r = pane.svg.getBoundingClientRect();"
        " return [r.left + x, r.top + y]; }",
        point,
    )
    page.mouse.click(x, y)


def shot(page: Any, name: str, full_page: bool = False) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def axe_serious(page: Any) -> list[dict[str, Any]]:
    """axe-core violations of impact serious or critical on the current page."""
    # evaluated through the DevTools protocol: an inline <script> tag would be refused by the app's CSP
    page.evaluate(f"() => {{ {AXE.read_text()}\n; window.axe = axe; }}")
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
