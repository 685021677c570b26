"""End to end, as an adjudicator and a reader (issue 15, findings 5, 7, 8): the case-level queue with reasons,
threshold, filters and single reads marked; the item that explains each reader's value, opens on the slice of the
disputed finding and takes the decision by keys before its images have loaded; a contour dispute settled by
choosing the consensus line, then by drawing the final line with the mouse; the reader's calibration explained
after submitting. Logged in through the login form (conftest.new_page); real keys and mouse.

What tests/e2e/test_browser.py test_4 covers already (the loading indicator of a slow store, W/L preset and
reset, no pre-set decision against Ctrl+Enter) is not repeated here.

Set-up (not under test): the three readers of the seeded MRI case submit through the API — two call left upper
iliac BME present, one absent, and one reader's left joint line lies 9 mm off the others' — and reader3 alone
reads a second case, so that its items are single reads. The worker fits the consensus. The tests run in order.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from tests.e2e.conftest import Site, axe_serious, click_mm, live_connection, shot, wait_for
from tests.e2e.seed import READERS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

DISPUTED = ("left", "iliac_upper", "bme")
THRESHOLD = 0.9  # the seed's 1.0 would put every item in the queue


def _truth_slice(site: Site) -> tuple[int, list[list[float]]]:
    """A slice with a left joint line in the phantom's truth, away from the middle of the stack."""
    rows = sorted(
        (s for s in site.data.mri_truth["slices"] if s["joint"] == "left"), key=lambda s: s["slice_index"]
    )
    row = rows[len(rows) // 4]
    return row["slice_index"], row["points_mm"]


def _shift(points: list[list[float]], dx: float) -> list[list[float]]:
    return [[round(x + dx, 3), round(y, 3), round(z, 3)] for x, y, z in points]


def _reading(site: Site, reader: str, key: str, bme: int, line_dx: float | None, slice_index: int, line):
    api = site.api(reader)
    detail = api.get(f"{site.base}/api/assignments/{key}/").json()
    values = [
        {
            "joint": i["joint"],
            "region": i["region"],
            "lesion": i["lesion"],
            "value": bme if (i["joint"], i["region"], i["lesion"]) == DISPUTED else 0,
        }
        for i in detail["scheme"]["form"]
    ]
    contours = []
    if line_dx is not None:
        t1 = next(s["series_uid"] for s in detail["series"] if s["description"] == "T1")
        contours = [
            {
                "joint": "left",
                "series_uid": t1,
                "slice_index": slice_index,
                "points_mm": _shift(line, line_dx),
            }
        ]
    r = api.post(f"{site.base}/api/assignments/{key}/reading/", json={"values": values, "contours": contours})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def disputed(site: Site, django_db_blocker) -> dict[str, Any]:
    from labeling.models import Assignment, Case, Project, Study

    slice_index, line = _truth_slice(site)
    line = line[:: max(1, len(line) // 12)]
    project = site.data.mri_project
    with django_db_blocker.unblock():
        live_connection()
        Project.objects.filter(pk=project).update(adjudication_threshold=THRESHOLD)
        # a second case, read by reader3 only: its items are single reads
        other = Study.objects.exclude(study_uid__in=[site.data.mri_study, site.data.ct_study]).first()
        single = Case.objects.create(project_id=project, study=other, label="mri-2")
        reader3 = Assignment.objects.get(key=site.data.assignments["mri:reader3"]).reader
        lone = Assignment.objects.create(project_id=project, case=single, reader=reader3, session=1)
    for reader, bme, dx in zip(READERS, (1, 1, 0), (0.2, -0.2, 9.0), strict=True):
        _reading(site, reader, site.data.assignments[f"mri:{reader}"], bme, dx, slice_index, line)
    _reading(site, "reader3", lone.key, 1, None, slice_index, line)
    adj = site.api("adjudicator")
    queue_url = f"{site.base}/api/projects/{project}/adjudication/cases/"

    def fitted() -> bool:
        cases = {c["case_label"]: c for c in adj.get(queue_url).json()["results"]}
        if "mri-1" not in cases or "mri-2" not in cases:
            return False
        kinds = {(e["kind"], e.get("lesion")) for e in cases["mri-1"]["items"]}
        return ("grade", "bme") in kinds and ("contour", None) in kinds

    wait_for(fitted, timeout_s=120, what="the worker's consensus refit to fill the case queue")
    return {
        "project": project,
        "slice": slice_index,
        "line": line,
        "single_case": single.pk,
        "queue": adj.get(queue_url).json(),
    }


class Held:
    """A route handler that holds requests back until ``release()``; later ones pass at once."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.released = False

    def __call__(self, route: Any) -> None:
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self) -> None:
        self.released = True
        for route in self.routes:
            route.continue_()


def _queue_rows(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => [...document.querySelectorAll('section.queue-case')].flatMap(s =>
             [...s.querySelectorAll('tbody tr')].map(tr => ({case: s.dataset.case, kind: tr.dataset.kind,
               item: tr.cells[0].textContent, single: tr.classList.contains('single-read') ? '1' : ''})))"""
    )


def test_1_the_queue_lists_cases_with_reasons_threshold_filters_and_single_reads_last(
    site: Site, new_page, disputed
) -> None:
    project, api_queue = disputed["project"], disputed["queue"]
    page = new_page("adjudicator")
    page.goto(f"{site.base}/projects/{project}/adjudication")
    page.wait_for_selector("section.queue-case")
    # one section per case, however many of its items are in dispute; the case read once comes last
    cases = page.eval_on_selector_all("section.queue-case", "els => els.map(e => e.dataset.case)")
    assert cases == [c["case_label"] for c in api_queue["results"]]
    assert sorted(cases) == ["mri-1", "mri-2"] and cases[-1] == "mri-2"
    assert "0.90 certainty" in page.inner_text("[data-testid=queue-thresholds]")
    assert "3.0 mm" in page.inner_text("[data-testid=queue-thresholds]")
    first = page.locator("section[data-case=mri-1]")
    disputed_row = first.locator("tr", has_text="Left Iliac upper BME")
    assert "Reader disagreement: readers disagree: 0, 1, 1" in disputed_row.inner_text()
    contour_row = first.locator("tr[data-kind=contour]")
    assert f"slice {disputed['slice'] + 1}" in contour_row.inner_text()
    assert "Contour" in contour_row.locator("[data-reason=contour]").inner_text()
    # single reads are marked, and they are all in the last case
    rows = _queue_rows(page)
    assert {r["case"] for r in rows if r["single"]} == {"mri-2"}
    assert all("read once" in r["item"] for r in rows if r["single"])
    assert not [r for r in rows if r["case"] == "mri-1" and r["single"]]
    assert axe_serious(page) == []
    shot(page, "a1-adjudication-case-queue", full_page=True)

    # Filters with the mouse, kept in the address: the reason "Contour" leaves the joint lines only ...
    page.select_option("#filter-reason", "contour")
    page.wait_for_url(re.compile(r"reason=contour"))
    page.wait_for_function("() => [...document.querySelectorAll('section.queue-case tbody tr')].length > 0")
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.queue-case tbody tr')].every(tr => tr.dataset.kind === 'contour')"
    )
    # ... "Leave out items read once" removes the case read once
    page.select_option("#filter-reason", "")
    page.click("#filter-single")
    page.wait_for_url(re.compile(r"single_read=exclude"))
    page.wait_for_function("() => !document.querySelector('section[data-case=mri-2]')")
    assert page.locator("tr.single-read").count() == 0
    # a reload keeps the filters
    page.reload()
    page.wait_for_selector("section.queue-case")
    assert (
        page.locator("#filter-single").is_checked() and page.locator("section[data-case=mri-2]").count() == 0
    )

    # An earlier filter's answer that arrives late is not shown under the newer filter: the lesion filter's
    # request is held back, the joint filter chosen after it answers first.
    page.click("#filter-single")  # back to every item
    page.wait_for_selector("section[data-case=mri-2]")
    held = Held()

    def fat(url: str) -> bool:
        return "/adjudication/cases/" in url and "lesion=fat" in url

    page.route(fat, held)  # the lesion filter "fat": its answer is held until released below
    page.select_option("#filter-lesion", "fat")
    for _ in range(50):
        if held.routes:
            break
        page.wait_for_timeout(100)
    assert held.routes, "the fat filter sent no request"
    page.select_option("#filter-lesion", "bme")  # answered at once
    page.wait_for_url(re.compile(r"lesion=bme"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('section.queue-case tbody tr')].some(tr => /BME/.test(tr.cells[0].textContent))"
    )
    with page.expect_response(lambda response: fat(response.url)):
        held.release()  # the earlier filter's answer arrives last
    page.wait_for_timeout(500)  # and the page has had time to show it, if it would
    items = [r["item"] for r in _queue_rows(page)]
    assert items and all("BME" in i for i in items), items
    assert page.errors == []


def _slice(page: Any) -> int:
    return page.evaluate("() => window.__concordViewer.slice")


def test_2_the_item_explains_each_value_opens_on_the_disputed_slice_and_takes_keys_while_loading(
    site: Site, new_page, disputed
) -> None:
    project = disputed["project"]
    page = new_page("adjudicator")
    page.goto(f"{site.base}/projects/{project}/adjudication?reason=disagreement")
    page.wait_for_selector("section[data-case=mri-1]")
    # A slow store: the images wait until the test releases them; the decision does not wait for them.
    held = Held()
    page.route("**/dicomweb/**", held)
    page.locator("section[data-case=mri-1] tr", has_text="Left Iliac upper BME").locator(
        "text=Decide"
    ).click()
    page.wait_for_selector("[data-testid=loading]")
    # each reader's value with what the consensus makes of it (finding 5)
    explanations = page.locator("[data-testid=explanation]").all_inner_texts()
    assert len(explanations) == 3
    for text in explanations:
        assert re.match(r"a [01] \(BME (present|absent)\) from this reader ", text), text
        assert "; this reader " in text and "grade" not in text, text
    assert page.locator("input[name=decision]:checked").count() == 0  # nothing pre-set
    # keys before the images: a digit picks the value and moves to the reason
    page.keyboard.press("1")
    assert page.locator("[data-testid=loading]").count() == 1 and held.routes, "the images were not held back"
    assert page.locator("input[name=decision][value='1']").is_checked()
    assert page.evaluate("() => document.activeElement.id") == "reason"
    page.keyboard.type("two readers see BME on STIR")
    # ... and the viewer opens on the slice of the disputed finding (where its joint was traced)
    held.release()
    page.wait_for_selector("[data-first-image-ms]")
    assert _slice(page) == disputed["slice"]
    assert f"Slice {disputed['slice'] + 1} /" in page.inner_text(".toolbar .slice")
    page.wait_for_selector("polyline[data-reader]", state="attached")
    assert axe_serious(page) == []
    shot(page, "a2-adjudication-item-explained")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: "/iliac_upper/bme" not in url)
    item = site.api("adjudicator").get(
        f"{site.base}/api/projects/{project}/adjudication/items/{_case_id(site, project)}/left/iliac_upper/bme/"
    )
    assert [d["value"] for d in item.json()["adjudications"]] == [1]
    assert page.errors == []


def _case_id(site: Site, project: int) -> int:
    queue = site.api("adjudicator").get(f"{site.base}/api/projects/{project}/adjudication/cases/").json()
    return next(c["case_id"] for c in queue["results"] if c["case_label"] == "mri-1")


def _decisions(site: Site, project: int, case_id: int, slice_index: int) -> list[dict[str, Any]]:
    url = f"{site.base}/api/projects/{project}/adjudication/contours/{case_id}/left/{slice_index}/"
    return site.api("adjudicator").get(url).json()["decisions"]


def test_3_a_contour_dispute_is_settled_by_choosing_the_consensus_then_by_drawing(
    site: Site, new_page, disputed
) -> None:
    project, slice_index = disputed["project"], disputed["slice"]
    case_id = _case_id(site, project)
    page = new_page("adjudicator")
    page.goto(f"{site.base}/projects/{project}/adjudication?reason=contour")
    held = Held()  # a slow store: the view says it is loading until the images come
    page.route("**/dicomweb/**", held)
    page.locator("section[data-case=mri-1] tr[data-kind=contour]").locator("text=View contours").click()
    page.wait_for_selector("[data-testid=loading]")
    held.release()
    page.wait_for_selector("[data-first-image-ms]")
    assert page.locator("[data-testid=loading]").count() == 0
    # every reader's line and the dashed consensus on the disputed slice, which the viewer opens on
    assert _slice(page) == slice_index
    assert page.locator("polyline[data-reader]").count() == 3
    assert page.locator("polyline[data-consensus]").count() == 1
    assert "above the threshold 3.0 mm" in page.inner_text("[data-testid=contour-threshold]")
    assert page.locator("select[aria-label='Window preset'] option").count() >= 2
    # W steps through the window presets, R resets, as in the reading view
    voi = page.locator("[data-testid=pane-voi]").first
    before = voi.inner_text()
    page.keyboard.press("w")
    page.wait_for_function(
        "(b) => document.querySelector('[data-testid=pane-voi]').textContent !== b", arg=before
    )
    page.keyboard.press("r")
    page.wait_for_function(
        "(b) => document.querySelector('[data-testid=pane-voi]').textContent === b", arg=before
    )
    assert axe_serious(page) == []
    shot(page, "a3-contour-dispute")
    # choose the consensus line with the mouse; the page sends a blank reader (a 400 before)
    page.click("text=The consensus line")
    page.click("#reason")
    page.keyboard.type("the consensus follows the cortex")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: "/contours/" not in url)
    (decision,) = _decisions(site, project, case_id, slice_index)
    assert decision["choice"] == "consensus" and decision["current"]

    # drawing the final line instead: the contour tool on the disputed slice, clicks along the truth
    page.goto(f"{site.base}/projects/{project}/adjudication/contours/{case_id}/left/{slice_index}")
    page.wait_for_selector("[data-first-image-ms]")
    page.click("text=Draw the final line")
    page.wait_for_selector("[data-testid=viewer].contour-mode")
    line = disputed["line"]
    picks = [line[int(i * (len(line) - 1) / 2)] for i in range(3)]
    for p in picks:
        click_mm(page, p)
    page.wait_for_selector("[data-testid=drawn-points]:has-text('Drawing: 3 points')")
    shot(page, "a4-contour-drawn")
    page.click("#reason")
    page.keyboard.type("neither line follows the joint")
    page.click("text=Record decision and go to next")
    page.wait_for_url(lambda url: "/contours/" not in url)
    current = [d for d in _decisions(site, project, case_id, slice_index) if d["current"]]
    assert [d["choice"] for d in current] == ["drawn"]
    drawn = current[0]["points_mm"]
    assert len(drawn) == 3
    worst = max(min(math.dist(a, b) for b in picks) for a in drawn)
    assert worst < 1.0, f"the drawn line lies {worst:.2f} mm from the clicks"
    assert page.errors == []


def test_4_the_reader_sees_the_consensus_explained_in_the_calibration(site: Site, new_page, disputed) -> None:
    """reader3, the one who said BME absent, after submitting: the calibration table explains the agreement
    figure in words spoken to them."""
    page = new_page("reader3")
    page.goto(f"{site.base}/projects/{disputed['project']}/worklist")
    page.wait_for_selector("h2:text-is('My calibration')")
    table = page.locator("h2:text-is('My calibration') + p + table")
    bme = table.locator("tr", has=page.locator("td:text-is('BME')"))
    text = bme.locator("[data-testid=calibration-explanation]").inner_text()
    assert re.match(
        r"You gave the consensus value on \d+ of \d+ items? \(\d+%\); the consensus model believes you "
        r"(always |never )?(agree|miss|report|read)\b",
        text,
    ), text
    assert not re.search(r"\byou (reads|agrees|misses|reports)\b", text), text
    assert text.endswith(".")
    assert axe_serious(page) == []
    shot(page, "a5-calibration-explained", full_page=True)
    assert page.errors == []
