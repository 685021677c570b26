"""End to end in a real browser: three readers grade the phantom MRI case (one with a contour, two keyboard
only), the consensus refits in a real worker, the adjudicator resolves an item, the admin sees agreement, then
trains a (tiny) contour model in the gpu worker and watches it, and the adjudicator sees its AI pre-read.

The tests of this module run in order and share one seeded server (see conftest.site)."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import pytest

from tests.e2e.conftest import Site, axe_serious, click_mm, shot, wait_for

# The data is seeded (committed) and flushed once per module by conftest.site; the plain django_db mark only
# makes pytest-django create the test database.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

FIRST_IMAGE_BUDGET_MS = float(os.environ.get("E2E_FIRST_IMAGE_BUDGET_MS", "1500"))
FIRST_IMAGE_MS: list[float] = []  # measured by the first test, checked against the budget by the next
# As tests/ml_app's TINY_CONTOUR, one epoch more so that the run is seen between epochs.
TINY_CONTOUR = {"epochs": 3, "width": 4, "crop_mm": 48.0, "pixel_mm": 1.5, "batch_size": 16, "device": "cpu"}
TINY_LESIONS = {  # as tests/ml_app's
    "epochs": 1,
    "batch_size": 4,
    "device": "cpu",
    "model": {"channels": [4, 8], "strides": [2, 2]},
    "crop": {"crop_mm": 64.0, "size_px": 32, "n_slices": 8},
}

# Contrast (standard deviation of the red channel) in the middle of the first pane's canvas: 0 when blank.
CANVAS_SD_JS = """
() => {
  const canvas = window.__concordViewer.panes[0].element.querySelector('canvas');
  const ctx = canvas.getContext('2d');
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const cx = canvas.width / 2, cy = canvas.height / 2, vals = [];
  for (let y = cy - 100; y < cy + 100; y += 4) for (let x = cx - 100; x < cx + 100; x += 4)
    vals.push(data[(Math.round(y) * canvas.width + Math.round(x)) * 4]);
  const m = vals.reduce((s, x) => s + x, 0) / vals.length;
  return Math.sqrt(vals.reduce((s, x) => s + (x - m) ** 2, 0) / vals.length);
}
"""


def _rendered(page: Any) -> float:
    """Wait until every pane shows its image, then return the first canvas's contrast."""
    page.wait_for_function(
        "() => window.__concordViewer && window.__concordViewer.panes.every(p => p.hasImage)"
    )
    page.wait_for_timeout(300)  # the render after the camera fit
    return page.evaluate(CANVAS_SD_JS)


# The axial slice nearest to a patient point (as viewer/geometry.ts nearestSlice).
NEAREST_SLICE_JS = """
(point) => {
  const planes = window.__concordViewer.panes[0].series.planes;
  let best = 0, bestD = Infinity;
  planes.forEach((p, i) => {
    const r = p.iop.slice(0, 3), c = p.iop.slice(3);
    const n = [r[1]*c[2]-r[2]*c[1], r[2]*c[0]-r[0]*c[2], r[0]*c[1]-r[1]*c[0]];
    const d = Math.abs(n.reduce((s, x, j) => s + x * (point[j] - p.ipp[j]), 0));
    if (d < bestD) { bestD = d; best = i; }
  });
  return best;
}
"""

# Sample the first pane's canvas: luminance on the ground-truth joint line vs. 7 mm either side of it.
SAMPLE_JS = """
({points, offsetMm}) => {
  const v = window.__concordViewer;
  const pane = v.panes[0];
  const canvas = pane.element.querySelector('canvas');
  const rect = canvas.getBoundingClientRect();
  const k = canvas.width / rect.width;
  const ctx = canvas.getContext('2d');
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const lum = (x, y) => {
    let sum = 0, n = 0;
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      const px = Math.round(x * k) + dx, py = Math.round(y * k) + dy;
      if (px < 0 || py < 0 || px >= canvas.width || py >= canvas.height) continue;
      const i = (py * canvas.width + px) * 4;
      sum += (data[i] + data[i + 1] + data[i + 2]) / 3; n++;
    }
    return n ? sum / n : NaN;
  };
  const plane = pane.series.planes[pane.viewport.getCurrentImageIdIndex()];
  const r = plane.iop.slice(0, 3), c = plane.iop.slice(3);
  const n = [r[1]*c[2]-r[2]*c[1], r[2]*c[0]-r[0]*c[2], r[0]*c[1]-r[1]*c[0]];
  let on = [], off = [];
  for (let i = 1; i < points.length - 1; i++) {
    const t = points[i + 1].map((x, j) => x - points[i - 1][j]);
    const tl = Math.hypot(...t);
    const u = [n[1]*t[2]-n[2]*t[1], n[2]*t[0]-n[0]*t[2], n[0]*t[1]-n[1]*t[0]].map(x => x / tl);
    const [x, y] = v.toCanvas(pane, points[i]);
    on.push(lum(x, y));
    for (const s of [-1, 1]) {
      const q = points[i].map((x, j) => x + s * offsetMm * u[j]);
      const [qx, qy] = v.toCanvas(pane, q);
      off.push(lum(qx, qy));
    }
  }
  const mean = a => a.reduce((s, x) => s + x, 0) / a.length;
  // Overall contrast in the middle of the canvas: a blank canvas has none.
  const cx = canvas.width / 2, cy = canvas.height / 2, vals = [];
  for (let y = cy - 100; y < cy + 100; y += 4) for (let x = cx - 100; x < cx + 100; x += 4) {
    const i = (Math.round(y) * canvas.width + Math.round(x)) * 4; vals.push(data[i]);
  }
  const m = mean(vals);
  const sd = Math.sqrt(mean(vals.map(x => (x - m) ** 2)));
  return {on: mean(on), off: mean(off), sd, slice: v.slice, width: canvas.width, height: canvas.height};
}
"""


def _truth_line(site: Site, slice_index: int, joint: str) -> list[list[float]]:
    rows = [
        s for s in site.data.mri_truth["slices"] if s["slice_index"] == slice_index and s["joint"] == joint
    ]
    assert rows, f"no ground-truth line for {joint} on slice {slice_index}"
    return rows[0]["points_mm"]


def _form(site: Site, project: int, username: str = "reader1") -> list[dict[str, Any]]:
    a = site.api(username).get(f"{site.base}/api/assignments/{site.data.assignments['mri:' + username]}/")
    return a.json()["scheme"]["form"]


def _key(item: dict[str, Any]) -> str:
    return f"{item['joint']}/{item['region']}/{item['lesion']}"


def test_1_reader_grades_the_mri_case_with_a_contour_and_the_viewer_renders(site: Site, new_page) -> None:
    page = new_page("reader1")
    project = site.data.mri_project
    page.goto(f"{site.base}/projects/{project}/worklist")
    page.wait_for_selector("text=my worklist")
    assert axe_serious(page) == []
    shot(page, "01-worklist")

    asked: list[str] = []  # every DICOMweb URL the reader's viewer fetches
    page.on("request", lambda r: asked.append(r.url) if "/dicomweb/" in r.url else None)
    case_api: list[str] = []  # what the page asks of the case's API
    page.on(
        "request",
        lambda r: (
            case_api.append(f"{r.method} {r.url.split('/api', 1)[1]}")
            if "/api/assignments/" in r.url
            else None
        ),
    )
    started = time.monotonic()
    page.click("text=Next case")
    page.wait_for_selector("[data-first-image-ms]")
    key = page.url.rstrip("/").rsplit("/", 1)[-1]
    # the case data and its draft came with "Next case": the reading view asks for neither (issue 16: two
    # requests fewer per opened case)
    assert f"GET /assignments/{key}/" not in case_api, case_api
    assert f"GET /assignments/{key}/draft/" not in case_api, case_api
    wall_ms = (time.monotonic() - started) * 1000
    in_page_ms = float(page.get_attribute("[data-first-image-ms]", "data-first-image-ms") or "nan")
    FIRST_IMAGE_MS.append(in_page_ms)
    print(
        f"\nfirst image on screen: {in_page_ms:.0f} ms after opening the case (click to image: {wall_ms:.0f} ms)"
    )
    page.wait_for_function("() => window.__concordViewer && window.__concordViewer.panes.length === 2")
    time.sleep(0.3)  # let both panes finish their first render

    # The viewer really rendered: contrast on the canvas, and the joint line dark where the truth puts it.
    slice_index = page.evaluate("() => window.__concordViewer.slice")
    line = _truth_line(site, slice_index, "left")
    sample = page.evaluate(SAMPLE_JS, {"points": line[::4], "offsetMm": 7})
    print(
        f"canvas {sample['width']}x{sample['height']}, sd {sample['sd']:.1f}; joint line {sample['on']:.0f} vs "
        f"7 mm beside it {sample['off']:.0f}"
    )
    assert sample["sd"] > 5, "the canvas is blank"
    assert sample["on"] < 0.8 * sample["off"], sample
    assert axe_serious(page) == []
    shot(page, "02-reading-mri")

    # Slice navigation stays in sync across T1 and STIR.
    page.keyboard.press("PageDown")
    page.wait_for_function(f"() => window.__concordViewer.slice === {slice_index + 1}")
    indices = page.evaluate(
        "() => window.__concordViewer.panes.map(p => p.viewport.getCurrentImageIdIndex())"
    )
    assert indices == [slice_index + 1, slice_index + 1]
    page.keyboard.press("PageUp")
    page.wait_for_function(f"() => window.__concordViewer.slice === {slice_index}")

    # A contour of the left joint line: four clicks on the truth, start superior.
    page.keyboard.press("c")
    picks = [line[int(i * (len(line) - 1) / 3)] for i in range(4)]
    for p in picks:
        click_mm(page, p)
    page.wait_for_selector("text=4 points on this slice")

    # Grades with the mouse: everything 0 but left BME iliac upper.
    form = _form(site, project)
    for item in form:
        value = 1 if _key(item) == "left/iliac_upper/bme" else 0
        page.locator(f'[id="g-{_key(item)}-{value}"]').check()
    page.wait_for_selector("text=Draft saved", timeout=10_000)

    # A reload loses nothing: the draft comes back from the server.
    page.reload()
    page.wait_for_selector("[data-first-image-ms]")
    page.wait_for_selector("text=1 contour(s)")
    assert page.locator('[id="g-left/iliac_upper/bme-1"]').is_checked()
    assert page.locator("input[type=radio]:checked").count() == len(form)
    shot(page, "03-reading-mri-contour")

    page.click("text=Submit reading")
    page.wait_for_url(f"{site.base}/projects/{project}/worklist?done=1")
    readings = site.api("reader1").get(f"{site.base}/api/readings/").json()
    readings = readings["results"] if isinstance(readings, dict) else readings
    assert len(readings) == 1
    (contour,) = readings[0]["contours"]
    assert contour["joint"] == "left" and contour["slice_index"] == slice_index
    # the reader knows the series by the assignment's pseudonymous UID, never the stored one (issue 13)
    key = site.data.assignments["mri:reader1"]
    detail = site.api("reader1").get(f"{site.base}/api/assignments/{key}/").json()
    t1 = next(s["series_uid"] for s in detail["series"] if s["description"] == "T1")
    assert contour["series_uid"] == t1 != site.data.series["T1"]
    # ... and so does the viewer: every image request names the assignment's own study, none a stored UID
    assert asked and all(f"/dicomweb/studies/{detail['study_uid']}/" in url for url in asked), asked[:3]
    stored = {site.data.mri_study, *site.data.series.values()}
    assert not [url for url in asked if any(uid in url for uid in stored)]
    assert readings[0]["assignment"] == key and "case_id" not in readings[0]
    pts = contour["points_mm"]
    assert pts[0][2] >= pts[-1][2], "a contour runs superior → inferior"
    worst = max(math.dist(a, b) for a, b in zip(pts, picks, strict=True))
    print(f"contour points within {worst:.2f} mm of the clicked ground truth")
    assert worst < 1.0
    assert page.errors == []


def test_1b_first_image_within_budget() -> None:
    """The budget holds for the page alone; beside the rest of the parallel suite (xdist workers on the
    same 2 cores) the first image gets twice the budget (1181 ms was measured there)."""
    assert FIRST_IMAGE_MS, "test_1 did not measure the first image"
    shared = "PYTEST_XDIST_WORKER" in os.environ
    budget = FIRST_IMAGE_BUDGET_MS * (2 if shared else 1)
    print(
        f"first image after {FIRST_IMAGE_MS[0]:.0f} ms (budget {budget:.0f} ms{', shared cores' if shared else ''})"
    )
    assert FIRST_IMAGE_MS[0] <= budget, (
        f"first image after {FIRST_IMAGE_MS[0]:.0f} ms, budget {budget:.0f} ms"
    )


@pytest.mark.parametrize(
    "username,ones", [("reader2", set()), ("reader3", {"left/iliac_upper/bme", "right/joint/sclerosis"})]
)
def test_2_keyboard_only_grading(site: Site, new_page, username: str, ones: set[str]) -> None:
    page = new_page(username)
    page.goto(f"{site.base}/projects/{site.data.mri_project}/worklist")
    page.wait_for_selector("text=my worklist")
    page.keyboard.press("Enter")  # "Next case" has the focus
    page.wait_for_selector("[data-first-image-ms]")
    page.keyboard.press("g")  # to the first ungraded item
    for item in _form(site, site.data.mri_project, username):
        page.keyboard.press("1" if _key(item) in ones else "0")
    shot(page, f"04-keyboard-{username}")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"{site.base}/projects/{site.data.mri_project}/worklist?done=1")
    readings = site.api(username).get(f"{site.base}/api/readings/").json()
    readings = readings["results"] if isinstance(readings, dict) else readings
    values = {_key(v): v["value"] for v in readings[0]["values"]}
    assert {k for k, v in values.items() if v == 1} == ones
    assert page.errors == []


def test_2b_keyboard_only_grading_of_a_ct_case(site: Site, new_page) -> None:
    """No mouse from the worklist to the submitted reading: Enter opens the next case, Home/End and the arrows
    scroll, g goes to the first item, digits grade, Ctrl+Enter submits; axe finds nothing serious."""
    project = site.data.ct_project
    page = new_page("reader3")
    page.goto(f"{site.base}/projects/{project}/worklist")
    page.wait_for_selector("text=my worklist")
    page.keyboard.press("Enter")  # "Next case" has the focus
    page.wait_for_selector("[data-first-image-ms]")
    key = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.wait_for_function("() => window.__concordViewer.panes.every(p => p.hasImage)")
    count = page.evaluate("() => window.__concordViewer.sliceCount")
    page.keyboard.press("End")
    page.wait_for_function(f"() => window.__concordViewer.slice === {count - 1}")
    page.keyboard.press("Home")
    page.wait_for_function("() => window.__concordViewer.slice === 0")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => window.__concordViewer.slice === 1")
    page.keyboard.press("g")  # to the first ungraded item: left, then right
    page.keyboard.press("2")
    page.keyboard.press("3")
    assert axe_serious(page) == []
    shot(page, "04b-keyboard-ct-reader3")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(f"{site.base}/projects/{project}/worklist?done=1")
    readings = site.api("reader3").get(f"{site.base}/api/readings/").json()
    readings = readings["results"] if isinstance(readings, dict) else readings
    (reading,) = [r for r in readings if r["assignment"] == key]
    assert {v["joint"]: v["value"] for v in reading["values"]} == {"left": 2, "right": 3}
    assert page.errors == []


def test_3_ct_reading_view_shows_the_grade_definitions(site: Site, new_page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = new_page("reader1")
    page.goto(f"{site.base}/read/{site.data.assignments['ct:reader1']}")
    page.wait_for_selector("[data-first-image-ms]")
    assert page.locator("text=total ankylosis").is_visible()
    page.keyboard.press("g")
    page.keyboard.press("2")
    page.keyboard.press("3")
    assert page.locator('[id="g-right/joint/mny_grade-3"]').is_checked()
    assert axe_serious(page) == []
    shot(page, "05-reading-ct")

    # The coronal reformat, linked to the axial stack: a click on the coronal moves the axial view to the
    # slice through the clicked point; a click on the axial view moves the coronal plane through it.
    page.click("text=Coronal reformat")
    page.wait_for_selector("[data-reformat-ready]", timeout=30_000)
    page.wait_for_selector(".reformat-box line[data-ref=axial]", state="attached")
    page.wait_for_selector("[data-testid=viewer] line[data-ref=coronal]", state="attached")
    before = page.evaluate("() => window.__concordViewer.slice")
    box = page.locator(".reformat-box .cs-element").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    picked = None
    for dy in (-0.2, 0.2, -0.1, 0.1):  # a point a few slices above or below the current one
        point = page.evaluate(
            "([x, y]) => { const r = window.__concordReformat; const b = document.querySelector("
            "'.reformat-box .cs-element').getBoundingClientRect(); return r.toWorld(x - b.left, y - b.top); }",
            [x, y + dy * box["height"]],
        )
        expected = page.evaluate(NEAREST_SLICE_JS, point)
        if expected != before:
            picked = (y + dy * box["height"], expected)
            break
    assert picked, "no other axial slice under the coronal view"
    page.mouse.click(x, picked[0])
    page.wait_for_function(f"() => window.__concordViewer.slice === {picked[1]}")
    page.wait_for_selector(f"text=Slice {picked[1] + 1} / ")  # the axial image of that slice is on screen
    print(f"coronal click: axial slice {before} → {picked[1]}")
    axial = page.locator("[data-testid=viewer] .cs-element").bounding_box()
    ax, ay = axial["x"] + axial["width"] * 0.5, axial["y"] + axial["height"] * 0.5
    target = page.evaluate(
        "([x, y]) => { const v = window.__concordViewer; const p = v.panes[0];"
        " const b = p.element.getBoundingClientRect(); return v.toWorld(p, x - b.left, y - b.top); }",
        [ax, ay],
    )
    page.mouse.click(ax, ay)
    page.wait_for_function(
        "(t) => { const c = window.__concordReformat.camera(); const n = c.viewPlaneNormal;"
        " return Math.abs(n.reduce((s, x, j) => s + x * (t[j] - c.focalPoint[j]), 0)) < 0.5; }",
        arg=target,
    )
    assert axe_serious(page) == []
    # The volume streams in slice by slice behind the first render (a minute and more when the cores are
    # shared); the checks above do not need it, the screenshot is better with it.
    try:
        page.wait_for_function("() => window.__concordReformat.volumeLoaded()", timeout=15_000)
    except PlaywrightTimeout:
        print("coronal screenshot taken while the volume was still loading")
    shot(page, "05b-reading-ct-coronal")
    assert page.errors == []


def test_3b_slice_changes_while_images_and_the_coronal_volume_load(site: Site, new_page) -> None:
    """Issue 16, the test_3 flake ("Slice 96 /" not shown 15 s after a click on the coronal reformat).

    Opening the reformat streamed every slice of the CT volume at once (Cornerstone's prefetch pool lets
    1,000 requests go): the browser queued them on its six connections and the axial image the reader moved
    to waited behind all of them (85 frame requests outstanding at once before the fix). The other suspect,
    a label that follows whichever of two overlapping slice changes ends last, is not one: the label reads
    the viewer's slice (checked here, it passed before the fix too)."""
    page = new_page("reader1")
    outstanding: set[Any] = set()
    peak = {"frames": 0}

    def started(request: Any) -> None:
        if "/frames/" in request.url:
            outstanding.add(request)
            peak["frames"] = max(peak["frames"], len(outstanding))

    def ended(request: Any) -> None:
        outstanding.discard(request)

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    page.goto(f"{site.base}/read/{site.data.assignments['ct:reader1']}")
    page.wait_for_selector("[data-first-image-ms]")
    label = page.locator(".slice")

    # A far slice (its image not loaded yet), then back to the shown one (loaded): the label follows the last.
    shown = page.evaluate("() => window.__concordViewer.slice")
    page.evaluate(
        "async (s) => { const v = window.__concordViewer;"
        " await Promise.all([v.setSlice(v.sliceCount - 1), v.setSlice(s)]); }",
        shown,
    )
    assert page.evaluate("() => window.__concordViewer.panes[0].viewport.getCurrentImageIdIndex()") == shown
    assert label.text_content().startswith(f"Slice {shown + 1} / ")

    # The coronal volume streams in behind the views, a few images at a time.
    peak["frames"] = 0
    page.click("text=Coronal reformat")
    page.wait_for_selector("[data-reformat-ready]", timeout=30_000)
    count = page.evaluate("() => window.__concordViewer.sliceCount")
    target = 0 if shown > count // 2 else count - 1  # the far end: loaded last by the viewer's prefetch
    loading = not page.evaluate("() => window.__concordReformat.volumeLoaded()")
    started_at = time.perf_counter()
    page.evaluate("(i) => window.__concordViewer.setSlice(i)", target)
    page.wait_for_selector(f"text=Slice {target + 1} / ", timeout=10_000)
    moved_s = time.perf_counter() - started_at
    page.wait_for_function("() => window.__concordReformat.volumeLoaded()", timeout=120_000)
    print(
        f"axial slice {target + 1} on screen {moved_s:.2f} s after the move (volume loading: {loading});"
        f" at most {peak['frames']} image requests outstanding while the volume loaded"
    )
    # Two background downloads and the reader's own; the browser's events lag the pools' by a request or two
    assert peak["frames"] <= 8, f"{peak['frames']} image requests at once: the browser queues beyond six"
    assert page.errors == []


def test_4_adjudicator_resolves_an_item(site: Site, new_page) -> None:
    project = site.data.mri_project
    adj = site.api("adjudicator")

    def queued() -> bool:
        return adj.get(f"{site.base}/api/projects/{project}/adjudication/queue/").json().get("count", 0) > 0

    wait_for(queued, timeout_s=90, what="the consensus refit in the worker to fill the queue")
    page = new_page("adjudicator")
    page.goto(f"{site.base}/projects/{project}/adjudication")
    page.wait_for_selector("text=least certain first")
    assert axe_serious(page) == []
    shot(page, "06-adjudication-queue")

    case_id = adj.get(f"{site.base}/api/projects/{project}/adjudication/queue/").json()["results"][0][
        "case_id"
    ]
    item = f"/projects/{project}/adjudication/{case_id}/left/iliac_upper/bme"
    # A slow store: the study metadata comes after a second, meanwhile the viewer says it is loading.
    metadata = "**/dicomweb/studies/*/metadata"
    page.route(metadata, lambda route: (time.sleep(1.0), route.continue_()))
    page.goto(site.base + item)
    page.wait_for_selector("[data-testid=loading]")
    page.wait_for_selector("[data-first-image-ms]")
    page.unroute(metadata)
    assert page.locator("[data-testid=loading]").count() == 0
    page.wait_for_selector("polyline[data-reader]", state="attached")  # reader 1's contour, in its colour
    assert _rendered(page) > 5, "the adjudication view shows no image"
    assert page.locator("table.readers tbody tr").count() == 3
    assert axe_serious(page) == []
    shot(page, "07-adjudication-item")
    # No decision is pre-set: Ctrl+Enter with a reason but no value chosen records nothing.
    assert page.locator("input[name=decision]:checked").count() == 0, "the decision is pre-set"
    page.fill("#reason", "rubber stamp?")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[role=alert]:has-text('Choose a value.')")
    assert (
        adj.get(f"{site.base}/api{item.replace('/adjudication/', '/adjudication/items/')}/").json()[
            "adjudications"
        ]
        == []
    )
    page.fill("#reason", "")
    page.keyboard.press("Shift+Tab")  # out of the reason field, onto the decision (choosing nothing)
    # W/L presets and reset, as in the reading view.
    voi = page.locator("[data-testid=pane-voi]").first
    before = voi.inner_text()
    page.keyboard.press("w")
    page.wait_for_function(
        "(b) => document.querySelector('[data-testid=pane-voi]').textContent !== b", arg=before
    )
    page.click("text=Reset view")
    page.wait_for_function(
        "(b) => document.querySelector('[data-testid=pane-voi]').textContent === b", arg=before
    )
    # Keyboard: a digit picks the value and moves to the reason; Ctrl+Enter records.
    page.keyboard.press("1")
    assert page.locator("input[name=decision][value='1']").is_checked()
    page.keyboard.type("BME visible on two consecutive STIR slices")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: item not in url)
    detail = adj.get(f"{site.base}/api{item.replace('/adjudication/', '/adjudication/items/')}/").json()
    assert [d["value"] for d in detail["adjudications"]][:1] == [1]
    assert page.errors == []


def test_5_admin_sees_projects_and_agreement(site: Site, new_page) -> None:
    project = site.data.mri_project
    page = new_page("admin")
    page.goto(f"{site.base}/manage/projects/{project}")
    page.wait_for_selector("text=Generate assignments")
    page.wait_for_selector("td:text-is('reader3')")  # the members table loads on its own request
    assert axe_serious(page) == []
    shot(page, "08-admin-project", full_page=True)
    # The case preview (the viewer's demo page) shows the study to its admin.
    page.click("text=Preview")
    page.wait_for_selector("[data-first-image-ms]")
    assert _rendered(page) > 5, "the case preview shows no image"
    assert axe_serious(page) == []
    shot(page, "08b-case-preview")
    page.goto(f"{site.base}/manage/projects/{project}/agreement")
    page.wait_for_selector("figure.chart svg", timeout=60_000)
    assert page.locator("figure.chart").count() >= 6
    # the progress panel loads on its own request, possibly after the charts: wait for it, then count
    page.wait_for_selector("text=3 of 3 assignments submitted", timeout=30_000)
    assert page.locator("text=3 of 3 assignments submitted").count() == 1
    assert axe_serious(page) == []
    shot(page, "09-agreement", full_page=True)
    assert page.errors == []


def test_6_admin_trains_a_model_and_watches_it(site: Site, new_page) -> None:
    project = site.data.train_project
    page = new_page("admin")
    page.goto(f"{site.base}/manage/projects/{project}")
    page.click("text=Training and models")
    page.wait_for_selector("text=No training runs yet.")
    assert axe_serious(page) == []

    page.select_option("#train-kind", "contour")
    page.fill("#train-config", json.dumps(TINY_CONTOUR))
    started = time.monotonic()
    page.click("text=Start training")
    page.wait_for_selector("text=/Run \\d+ queued\\./")
    card = page.locator(".run-card", has_text="Joint-line contours")
    # A second start while the run is active is refused, and says why.
    page.click("text=Start training")
    page.wait_for_selector("text=Only one run per model can be queued or running")
    assert page.locator("[role=alert]", has_text="already").count() == 1
    # Another kind may start meanwhile: a lesion classifier, queued behind the contour run (test 7 uses it).
    page.select_option("#train-kind", "lesions")
    page.fill("#train-config", json.dumps(TINY_LESIONS))
    page.click("text=Start training")
    page.locator(".run-card", has_text="Lesion classifier").wait_for()

    # Live progress by polling: the states and epochs the page showed, until the run ends.
    seen: list[str] = []

    def finished() -> bool:
        text = card.locator(".run-status").inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        return card.get_attribute("class").split("state-")[-1] in ("succeeded", "failed", "cancelled")

    wait_for(finished, timeout_s=300, what="the training run to end")
    print(f"training run: {time.monotonic() - started:.1f} s; the page showed: {seen}")
    assert "state-succeeded" in (card.get_attribute("class") or ""), seen
    assert any("Epoch" in s and "loss" in s for s in seen), seen
    assert any(s.startswith(("Queued", "Preparing", "Epoch 1", "Epoch 2")) for s in seen), seen
    assert card.locator("progress").get_attribute("value") == "1"
    assert card.locator("figure.chart svg").count() == 1  # loss per epoch

    # The run registered a version, evaluated on the gold case and promoted (the project had none).
    versions = page.locator("[data-testid=model-versions]")
    row = versions.locator("tr[data-version='contour-1']")
    # not frac_below_2_76mm; within the contour version's row: the lesion run queued behind it may have
    # finished by now, and its version's metrics mention the contour figure too (CI, a quiet machine)
    row.locator("text=joint slices with RMSE < 2.76 mm (fraction)").wait_for()
    assert row.locator(".badge").inner_text() == "promoted"
    assert "1 gold case(s)" in row.inner_text()
    assert "no promoted model yet" in row.inner_text()
    runs = page.locator("[data-testid=training-runs]")
    assert "contour v1 (promoted)" in runs.inner_text()
    assert runs.locator("tbody tr").count() == 2

    # Nightly retraining of the contour model, set from the page.
    page.check("#policy-contour-enabled")
    page.fill("#policy-contour-hour", "3")
    page.locator("form[data-kind=contour] button[type=submit]").click()
    page.wait_for_selector("text=Saved: nightly at 3:00 UTC.")
    policies = site.api("admin").get(f"{site.base}/api/projects/{project}/training/policies/").json()
    (contour_policy,) = [p for p in policies if p["kind"] == "contour"]
    assert contour_policy["schedule_enabled"] and contour_policy["hour_utc"] == 3
    assert axe_serious(page) == []
    shot(page, "10-training", full_page=True)
    assert page.errors == []


def test_7_adjudicator_sees_the_ai_pre_read_and_readers_do_not(site: Site, new_page) -> None:
    project = site.data.train_project
    case_id = site.data.train_cases[0]
    adj = site.api("adjudicator")
    predictions = f"{site.base}/api/projects/{project}/cases/{case_id}/predictions/"
    wait_for(
        lambda: len(adj.get(predictions).json()) == 2,
        timeout_s=240,
        what="the AI pre-reads of the case by the contour and lesion models",
    )
    by_kind = {p["kind"]: p for p in adj.get(predictions).json()}
    prediction, lesions = by_kind["contour"], by_kind["lesions"]
    assert prediction["version"] == 1 and lesions["version"] == 1
    p_bme = lesions["output"]["left"]["bme/iliac_upper"]
    left = [c for c in prediction["output"]["contours"] if c["side"] == "left"]
    print(f"AI pre-read: {len(prediction['output']['contours'])} contour(s), {len(left)} on the left joint")
    assert left, prediction["output"]
    longest = max(left, key=lambda c: math.dist(c["points_mm"][0], c["points_mm"][-1]))

    item = f"/projects/{project}/adjudication/{case_id}/left/iliac_upper/bme"
    # Blinding is the API's: a reader gets no adjudication item, hence no AI output.
    reader_item = site.api("reader1").get(
        f"{site.base}/api{item.replace('/adjudication/', '/adjudication/items/')}/"
    )
    assert reader_item.status_code in (403, 404)

    page = new_page("adjudicator")
    page.goto(f"{site.base}{item}?slice={longest['slice_index']}")
    page.wait_for_selector("[data-first-image-ms]")
    ai = page.locator("[data-testid=ai-output]")
    ai.locator("text=Pre-read by contour v1").wait_for()
    page.wait_for_selector("polyline.contour.ai[data-ai='contour v1']", state="attached")
    page.wait_for_selector("text=AI (contour v1)")
    # The lesion model's value beside the readers' values, with its probabilities as bars.
    ai_row = page.locator("tr.ai-row[data-ai='lesions v1']")
    assert f"P(1) = {p_bme:.2f}" in ai_row.inner_text()
    assert ai_row.locator("td").nth(2).inner_text().startswith(str(int(p_bme >= 0.5)))
    assert page.locator("svg[aria-label='AI (lesions v1) probability per value']").count() == 1
    assert _rendered(page) > 5, "the adjudication view shows no image"
    assert page.locator("svg text.ai-label").first.text_content() == "AI"
    assert axe_serious(page) == []
    shot(page, "11-adjudication-ai")
    assert page.errors == []


def test_8_an_ai_aided_read_shows_the_pre_read_and_an_unaided_one_does_not(site: Site, new_page) -> None:
    project = site.data.train_project
    reader = site.api("sim-R1")
    items = reader.get(f"{site.base}/api/projects/{project}/worklist/").json()["items"]
    aided = next(i for i in items if i["aided"] and i["status"] in ("open", "in_progress"))
    unaided = site.data.train_reads["sim-R1"]  # blinding: no AI output for the unaided read
    assert reader.get(f"{site.base}/api/assignments/{unaided}/ai/").status_code == 404
    assert reader.get(f"{site.base}/api/assignments/{aided['key']}/ai/").status_code == 200

    page = new_page("sim-R1")
    page.goto(f"{site.base}/read/{aided['key']}")
    page.wait_for_selector("[data-first-image-ms]")
    page.wait_for_selector("text=AI-aided read")
    ai = page.locator("[data-testid=ai-output]")
    ai.locator("text=contour v1, lesions v1").wait_for()
    assert ai.locator("tbody tr").count() == 28  # the lesion model's value for every item of the form
    page.wait_for_selector("polyline.contour.ai", state="attached")
    assert _rendered(page) > 5
    assert axe_serious(page) == []
    shot(page, "12-aided-read")
    assert page.errors == []
