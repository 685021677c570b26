"""Benchmark: time to the first image in the real browser on the demo data, cold and warm (issue 15, finding 12).

Run: ``make bench-first-image`` or ``.venv/bin/python -m tests.bench.bench_first_image [--store local|orthanc]
[--opens 30] [--warm 10] [--keep] [--reuse] [--waterfall]``. Needs PostgreSQL, Chromium (/usr/bin/chromium) and, for
``--store orthanc``, this worktree's Orthanc (``make services``).

It seeds a database of its own (``<DATABASE_URL's name>_firstimg_<store>``) as ``make demo`` does (demo_setup,
then demo_load_phantoms with ``--mri``/``--ct`` phantoms, 24 + 24 by default; the phantoms are cached under
``var/bench-first-image/phantoms``), starts gunicorn with config/gunicorn.conf.py (the demo's 4 workers x 4
threads), and opens, in Playwright with the system Chromium:

- ``--opens`` MRI cases and as many CT cases (as a reader who joined after the demo's readers: one open
  assignment per case, each case once; the demo has 24 of each) and adjudication items (the queue's first
  items of distinct cases, MRI and CT projects), **cold**: a fresh browser context
  (empty HTTP cache) per open, gunicorn restarted just before (empty per-process caches), each case for the
  first time since the restart (the OS page cache of the store's files is not dropped);
- the first ``--warm`` of each kind again, **warm**: in the context that opened them (HTTP cache and server
  warm).

Each open is a full page load of the view's URL; times are from the navigation's start to the first image on
screen (the viewer's ``concord:first-image`` performance mark), split by the Resource Timing entries and the
viewer's marks into: case data (the view's own API call answered), metadata (the study's DICOMweb metadata
answered), first frame (the first frame's bytes in), decode (``concord:first-decoded``: the first image
decoded and on the stack) and render. It prints a Markdown table: median and p95 per kind, how many opens
stayed within the 1.5 s budget, the median of each part, and the load average while it ran.

``--waterfall`` also prints, for the first cold open of each kind, every request of the page with its start
and end (ms from the navigation's start), its size on the wire and the viewer's marks: where the time goes.

``--keep`` keeps the database and the store (under ``var/bench-first-image/<store>``) for ``--reuse``, which
skips the seeding when they are there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.bench.stack import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-gl=swiftshader"]
BUDGET_MS = 1500.0
PASSWORD = "bench-first-image-pw"
FOLDER = ROOT / "var" / "bench-first-image"

#: What the page measured: times (ms from the navigation's start) of the view's API call, the metadata, the
#: first frame's bytes, the viewer's marks; ``app`` is the viewer's own figure (from the view's opening).
MEASURE_JS = """() => {
  const entries = performance.getEntriesByType('resource');
  const end = (test) => entries.filter((e) => test(e.name)).map((e) => e.responseEnd);
  const mark = (name) => { const m = performance.getEntriesByName(name, 'mark'); return m.length ? m[0].startTime : null; };
  const api = end((u) => /\\/api\\/(assignments\\/[^/]+\\/$|projects\\/\\d+\\/adjudication\\/items\\/)/.test(u));
  const meta = end((u) => u.includes('/dicomweb/') && u.endsWith('/metadata'));
  const frames = end((u) => u.includes('/frames/'));
  const box = document.querySelector('[data-first-image-ms]');
  return {
    case: api.length ? Math.min(...api) : null,
    metadata: meta.length ? Math.max(...meta) : null,
    frame: frames.length ? Math.min(...frames) : null,
    decoded: mark('concord:first-decoded'),
    image: mark('concord:first-image'),
    app: box ? Number(box.dataset.firstImageMs) : null,
    cached_frames: entries.filter((e) => e.name.includes('/frames/') && e.transferSize === 0).length,
  };
}"""
PARTS = ("case", "metadata", "frame", "decode", "render")

#: Every request of the page (Resource Timing) and the marks on the way to the first image, for --waterfall.
WATERFALL_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const rows = [];
  if (nav) rows.push({name: 'document ' + location.pathname, start: nav.startTime, end: nav.responseEnd,
    size: nav.transferSize, kind: 'navigation'});
  for (const e of performance.getEntriesByType('resource'))
    rows.push({name: e.name.replace(location.origin, ''), start: e.startTime, end: e.responseEnd,
      size: e.transferSize, kind: e.initiatorType});
  if (nav) rows.push({name: 'DOMContentLoaded', start: nav.domContentLoadedEventStart, end: null, size: null,
    kind: 'event'});
  for (const m of performance.getEntriesByType('mark'))
    rows.push({name: m.name, start: m.startTime, end: null, size: null, kind: 'mark'});
  return rows.sort((a, b) => a.start - b.start);
}"""


def manage(env: dict[str, str], *args: str, timeout: float = 3600) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout


def database(admin_url: str, name: str, action: str) -> bool:
    """Drop and create the bench database ("create"), drop it ("drop") or say whether it exists ("exists")."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if action == "exists":
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
            )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if action == "create":
            conn.execute(f'CREATE DATABASE "{name}"')
    return True


TARGETS_PY = """
import json
from django.contrib.auth import get_user_model
from labeling.models import Assignment, Membership, Project
from labeling import selectors
User = get_user_model()
# a reader who joined after the demo's readers: one open assignment per case (theirs are mostly submitted)
bench, _ = User.objects.get_or_create(username="benchreader")
for user in User.objects.filter(username__in=["benchreader", "adjudicator"]):
    user.set_password(%(password)r)
    user.save()
adjudicator = User.objects.get(username="adjudicator")
out = {"mri": [], "ct": [], "adjudication": []}
for kind, name in (("mri", "SIJ MRI demo"), ("ct", "SIJ CT demo")):
    project = Project.objects.get(name=name)
    Membership.objects.get_or_create(project=project, user=bench, role=Membership.Role.READER)
    for case in project.cases.order_by("id"):
        a, _ = Assignment.objects.get_or_create(project=project, case=case, reader=bench, session=1)
        out[kind].append({"user": "benchreader", "path": f"/read/{a.key}"})
    seen = set()
    for item in selectors.adjudication_queue(project=project, adjudicator=adjudicator):
        if item.case_id not in seen:
            seen.add(item.case_id)
            path = f"/projects/{project.pk}/adjudication/{item.case_id}/{item.joint}/{item.region}/{item.run.lesion}"
            out["adjudication"].append({"user": "adjudicator", "path": path, "project": kind})
print("TARGETS" + json.dumps(out))
"""


def seed(env: dict[str, str], args: argparse.Namespace) -> None:
    started = time.monotonic()
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "demo_setup")
    phantoms = FOLDER / "phantoms" / "seed-0"
    print(
        manage(
            env, "demo_load_phantoms", "--mri", str(args.mri), "--ct", str(args.ct), "--out", str(phantoms)
        )
    )
    print(f"seeded in {time.monotonic() - started:.0f} s")


def targets(env: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    out = manage(env, "shell", "-c", TARGETS_PY % {"password": PASSWORD})
    return json.loads(out.split("TARGETS", 1)[1])  # type: ignore[no-any-return]


class Web:
    """gunicorn with the demo's settings (config/gunicorn.conf.py), restartable for a cold server."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import requests

        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"]
        command += ["--bind", f"127.0.0.1:{self.port}"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True
            )

        def up() -> bool:
            try:
                return requests.get(f"{self.base}/api/auth/csrf/", timeout=5).status_code < 500
            except requests.RequestException:
                return False

        wait_for(up, timeout_s=120, what="gunicorn", every_s=0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


def log_in(browser: Any, base: str, username: str) -> dict[str, Any]:
    """The storage state (session cookie) of a login through the form, for fresh contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def open_once(context: Any, url: str, waterfall: bool = False) -> dict[str, Any]:
    """One full page load of ``url`` up to the first image; a page without one within 60 s is recorded as a
    failure with what it showed (and a screenshot in the bench folder)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url)
        page.wait_for_function(
            "() => performance.getEntriesByName('concord:first-image', 'mark').length > 0", timeout=60_000
        )
        got: dict[str, Any] = page.evaluate(MEASURE_JS)
        if waterfall:
            page.wait_for_timeout(300)  # requests still in flight at the mark (prefetch) end in the table
            got["waterfall"] = page.evaluate(WATERFALL_JS)
    except PlaywrightTimeout:
        shot = FOLDER / f"failed-{url.rstrip('/').replace('/', '_').replace(':', '')[-80:]}.png"
        page.screenshot(path=str(shot))
        text = page.locator("main").inner_text(timeout=5_000)[:300] if page.locator("main").count() else ""
        got = {"image": None, "failed": f"{url}: no image in 60 s ({shot.name}; {errors[:2]}; {text!r})"}
        print(got["failed"])
    finally:
        page.close()
    return got


def parts(m: dict[str, Any]) -> dict[str, float]:
    """The time of each part: each mark minus the one before it."""
    points = [0.0, *(m.get(k) for k in ("case", "metadata", "frame", "decoded", "image"))]
    out = {}
    for name, (a, b) in zip(PARTS, itertools.pairwise(points), strict=True):
        out[name] = (b - a) if a is not None and b is not None else float("nan")
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=("local", "orthanc"), default="local")
    parser.add_argument("--opens", type=int, default=30, help="cold opens per kind (MRI, CT, adjudication)")
    parser.add_argument("--warm", type=int, default=10, help="warm opens per kind")
    parser.add_argument("--mri", type=int, default=24, help="MRI phantom studies (make demo: 24)")
    parser.add_argument("--ct", type=int, default=24, help="CT phantom studies (make demo: 24)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the store for --reuse")
    parser.add_argument("--reuse", action="store_true", help="use the kept database and store if there")
    parser.add_argument(
        "--waterfall",
        action="store_true",
        help="print every request (start/end) of the first cold open of each kind",
    )
    args = parser.parse_args()

    folder = FOLDER / args.store
    admin_url, base_name = os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord"
    ).rsplit("/", 1)
    db_name = f"{base_name}_firstimg_{args.store}"
    orthanc_url = f"http://127.0.0.1:{os.environ.get('ORTHANC_PORT', '8042')}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{admin_url}/{db_name}",
        "CONCORD_VAR_DIR": str(folder / "var"),
        "DICOM_FOLDER": str(folder / "dicom"),
        "DICOMWEB_URL": f"{orthanc_url}/dicom-web" if args.store == "orthanc" else "",
        "SECRET_KEY": "bench-first-image",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    seeded = folder / "seeded.json"
    reuse = args.reuse and seeded.exists() and database(f"{admin_url}/postgres", db_name, "exists")
    if reuse and json.loads(seeded.read_text()) != {"mri": args.mri, "ct": args.ct}:
        reuse = False
    if not reuse:
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "var").mkdir(parents=True)
        database(f"{admin_url}/postgres", db_name, "create")
        seed(env, args)
        seeded.write_text(json.dumps({"mri": args.mri, "ct": args.ct}))
    manage(env, "collectstatic", "--noinput", "-v", "0")  # the built front end, served by the web process
    if args.store == "local":
        print(manage(env, "dicom_reindex").strip())  # a kept store written by an older version: in line now
    found = targets(env)
    print({kind: len(items) for kind, items in found.items()})

    from playwright.sync_api import sync_playwright

    web = Web(env, folder / "web.log")
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    loads: list[float] = []
    try:
        web.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            states = {u: log_in(browser, web.base, u) for u in ("benchreader", "adjudicator")}
            web.stop()  # cold: new web workers, nothing of any case cached in them
            web.start()
            warm_contexts: dict[str, list[tuple[Any, str]]] = {}
            for kind in ("mri", "ct", "adjudication"):
                for n, target in enumerate(found[kind][: args.opens]):
                    context = browser.new_context(
                        storage_state=states[target["user"]], viewport={"width": 1400, "height": 860}
                    )
                    url = f"{web.base}{target['path']}"
                    measured = open_once(context, url, waterfall=args.waterfall and n == 0)
                    results.setdefault((kind, "cold"), []).append(measured)
                    loads.append(os.getloadavg()[0])
                    print(f"{kind} cold {target['path']}: {measured['image']} ms", flush=True)
                    kept = warm_contexts.setdefault(kind, [])
                    if len(kept) < args.warm:
                        open_once(context, url)  # the second open warms what a third one finds
                        kept.append((context, url))
                    else:
                        context.close()
            for kind, kept in warm_contexts.items():
                for context, url in kept:
                    results.setdefault((kind, "warm"), []).append(measured := open_once(context, url))
                    loads.append(os.getloadavg()[0])
                    print(f"{kind} warm {url}: {measured['image']} ms", flush=True)
                    context.close()
            browser.close()
    finally:
        web.stop()
        if not args.keep:
            database(f"{admin_url}/postgres", db_name, "drop")
            shutil.rmtree(folder, ignore_errors=True)
    report(results, loads, args)


def report(
    results: dict[tuple[str, str], list[dict[str, Any]]], loads: list[float], args: argparse.Namespace
) -> None:
    print()
    print(
        f"store {args.store}, {args.mri} MRI + {args.ct} CT phantom studies, load average "
        f"{min(loads):.1f}–{max(loads):.1f} (median {statistics.median(loads):.1f}) on {os.cpu_count()} cores"
    )
    print()
    head = "| kind | opens | p50 ms | p95 ms | within 1.5 s | " + " | ".join(f"{p} p50" for p in PARTS) + " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for (kind, temp), opens in results.items():
        images = [m["image"] if m["image"] is not None else math.inf for m in opens]  # a failure: never
        within = sum(1 for v in images if v <= BUDGET_MS)
        split = [parts(m) for m in opens if m["image"] is not None]
        medians = [statistics.median([s[p] for s in split if s[p] == s[p]] or [math.nan]) for p in PARTS]
        print(
            f"| {kind} {temp} | {len(opens)} | {_ms(statistics.median(images))} | {_ms(percentile(images, 0.95))} | "
            f"{within}/{len(images)} | " + " | ".join(_ms(v) for v in medians) + " |"
        )
    for (kind, temp), opens in results.items():
        for m in opens:
            if m.get("waterfall"):
                waterfall(f"{kind} {temp}", m["waterfall"])
    for opens in results.values():
        for m in opens:
            if m.get("failed"):
                print(f"failed: {m['failed']}")


def waterfall(title: str, rows: list[dict[str, Any]]) -> None:
    """One open, request by request: start and end in ms from the navigation's start, bytes on the wire."""
    print()
    print(f"{title}, first open, request by request (ms from the navigation's start):")
    print()
    print("| what | kind | start | end | kB |")
    print("|---|---|---|---|---|")
    for r in rows:
        name = r["name"] if len(r["name"]) <= 90 else r["name"][:40] + "…" + r["name"][-45:]
        end = _ms(r["end"]) if r["end"] is not None else ""
        size = f"{r['size'] / 1024:.1f}" if r["size"] is not None else ""
        print(f"| {name} | {r['kind']} | {_ms(r['start'])} | {end} | {size} |")


def _ms(value: float) -> str:
    return "never" if value == math.inf else "–" if value != value else f"{value:.0f}"


if __name__ == "__main__":
    main()
