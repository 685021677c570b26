"""Issue 14 end to end, reader-study conditions: an admin sets a T1-only vs T1 + STIR crossover on the project
page, generates the plan; a reader's T1-only read shows "T1 only read" and one T1 pane (no STIR anywhere),
the T1 + STIR read of the same reader shows both; simulated readers read the rest through the API; the worker
analyses the two conditions and the admin's reader-study page draws them. Real gunicorn + Celery + Chromium
(tests/e2e/conftest.py)."""

from __future__ import annotations

import random
import re
import time

import pytest

from labeling.schemes import SCHEME_DIR, scheme_load_file
from tests.e2e.conftest import Site, project_create, shot, wait_for
from tests.labeling.factories import full_values

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

#: The scheme the seeded MRI project uses, read from its file: this module never needs the ORM on the test's
#: thread (whose connection an earlier module's clean-up may have ended).
MRI_SCHEME = scheme_load_file(SCHEME_DIR / "mri_sij.v1.yaml")

READERS = ("reader1", "reader2")


def _project_with_mri_cases(site: Site) -> tuple[int, dict[int, list[dict]]]:
    """A fresh MRI project, two readers, a case of every MR study of the site with a reference in which each
    lesion is present in half of the joints."""
    admin = site.api("admin")
    project = project_create(
        site,
        admin,
        {
            "name": "E2E conditions",
            "scheme": "mri_sij",
            "scheme_version": 1,
            "readers_per_case": 2,
            "washout_days": 0,
        },
        READERS,
    )
    studies = admin.get(f"{site.base}/api/studies/", params={"modality": "MR", "limit": 100}).json()
    studies = studies["results"] if isinstance(studies, dict) else studies
    assert len(studies) >= 3, studies
    template = full_values(MRI_SCHEME)
    truth = {}
    for i, study in enumerate(studies):
        reference = [{**v, "value": (i + (v["joint"] == "left")) % 2} for v in template]
        r = admin.post(
            f"{site.base}/api/projects/{project}/cases/create/",
            json={"study_uid": study["study_uid"], "label": f"cond-{i + 1}", "reference": reference},
        )
        assert r.status_code == 201, r.text
        truth[r.json()["id"]] = reference
    return project, truth


def test_a_t1_only_vs_t1_stir_crossover_set_on_the_project_page_read_and_analysed(
    site: Site, new_page
) -> None:
    project, truth = _project_with_mri_cases(site)
    admin_page = new_page("admin")
    admin_page.goto(f"{site.base}/manage/projects/{project}")
    admin_page.wait_for_selector("#setting-reader_study_conditions")
    assert "t1_only (T1 only" in admin_page.inner_text("#setting-reader_study_conditions-help")
    admin_page.fill("#setting-reader_study_conditions", "t1_only, guess")
    admin_page.click("button:text-is('Save settings')")
    admin_page.wait_for_selector('text=Reader-study conditions: unknown condition "guess"')
    admin_page.fill("#setting-reader_study_conditions", "t1_only, t1_stir")
    admin_page.select_option("#setting-reader_study_design", "crossover")
    admin_page.fill("#setting-washout_cases", "0")
    # the assignments list answers late (as under load): the generate form must still show the saved wash-out
    # once the save says "Saved" (it showed the old 20 until the list came, and a Generate then used 20)
    late = re.compile(r"/api/projects/\d+/assignments/")
    admin_page.route(late, lambda route: (time.sleep(0.5), route.continue_()))
    admin_page.click("button:text-is('Save settings')")
    admin_page.wait_for_selector("text=reader-study conditions default → t1_only, t1_stir")
    assert admin_page.input_value("#gen-wcases") == "0"
    admin_page.unroute(late)
    admin_page.click("button:text-is('Generate assignments')")
    n_cases = len(truth)
    admin_page.wait_for_selector(f"text=Created {2 * n_cases} assignments ({2 * n_cases} crossover reads).")
    shot(admin_page, "30-conditions-settings", full_page=True)

    # reader1 opens a T1-only read and a T1 + STIR read in the browser: the condition, and only its series
    reader = site.api("reader1")
    items = reader.get(f"{site.base}/api/projects/{project}/worklist/").json()["items"]
    assert {i["condition_label"] for i in items} <= {"T1 only", "T1 + STIR"}
    page = new_page("reader1")
    page.goto(f"{site.base}/projects/{project}/worklist")
    page.wait_for_selector("td:text-is('T1 only')")
    asked: list[str] = []
    page.on("response", lambda r: asked.append(f"{r.status} {r.url}") if "/dicomweb/" in r.url else None)
    seen: dict[str, int] = {}
    for condition, label, panes in (("t1_only", "T1 only", ["T1"]), ("t1_stir", "T1 + STIR", ["T1", "STIR"])):
        item = next(
            i
            for i in reader.get(f"{site.base}/api/projects/{project}/worklist/").json()["items"]
            if i["condition"] == condition
        )
        page.goto(f"{site.base}/read/{item['key']}")
        page.wait_for_selector(f".badge.condition:text-is('{label} read')")
        page.wait_for_selector("[data-first-image-ms]")
        assert page.locator(".pane .pane-label").all_inner_texts() == panes
        if condition == "t1_only":
            detail = reader.get(f"{site.base}/api/assignments/{item['key']}/").json()
            assert [x["description"] for x in detail["series"]] == ["T1"]  # no STIR series to ask for
            shot(page, "31-t1-only-read")
        seen[condition] = len(asked)
        r = reader.post(
            f"{site.base}/api/assignments/{item['key']}/reading/",
            json={"values": full_values(MRI_SCHEME)},
        )
        assert r.status_code == 201, r.text
    assert not [a for a in asked if a.startswith("404")], asked  # the viewer never asked for a hidden series
    assert page.errors == []

    # the rest read through the API by simulated readers, T1 only more often wrong
    admin = site.api("admin")
    rows = admin.get(f"{site.base}/api/projects/{project}/assignments/?limit=10000").json()["results"]
    case_of = {row["key"]: row["case_id"] for row in rows}
    for index, name in enumerate(READERS):
        api = site.api(name)
        for _ in range(4 * n_cases):
            nxt = api.post(f"{site.base}/api/projects/{project}/worklist/next/")
            if nxt.status_code == 204:
                break
            a = nxt.json()
            rng = random.Random(f"{index}:{a['key']}")
            p_off = 0.4 if a["condition"] == "t1_only" else 0.05
            values = [
                {**v, "value": 1 - v["value"] if rng.random() < p_off else v["value"]}
                for v in truth[case_of[a["key"]]]
            ]
            r = api.post(f"{site.base}/api/assignments/{a['key']}/reading/", json={"values": values})
            assert r.status_code == 201, r.text
    rows = admin.get(f"{site.base}/api/projects/{project}/assignments/?limit=10000").json()["results"]
    left = [
        f"{r['case_label']}/{r.get('reader')}/{r.get('condition')}: {r['status']}"
        for r in rows
        if r["status"] != "submitted"
    ]
    assert not left, "; ".join(left)

    url = f"{site.base}/api/projects/{project}/reader-study/"
    admin.get(url)
    wait_for(
        lambda: admin.get(url).status_code == 200, timeout_s=180, what="the worker's reader-study analysis"
    )
    study = admin.get(url).json()
    assert study["conditions"] == ["t1_only", "t1_stir"] and study["design"] == "crossover"
    admin_page.goto(f"{site.base}/manage/projects/{project}/reader-study")
    admin_page.wait_for_selector("text=conditions: T1 only vs T1 + STIR")
    analysed = [e["key"] for e in study["endpoints"] if "analyses" in e]
    assert analysed, study["endpoints"]
    section = admin_page.locator(f'section[data-endpoint="{analysed[0]}"]')
    section.wait_for()
    averages = section.locator('svg[data-figure="roc"] path.roc-average')
    assert sorted(averages.evaluate_all("ps => ps.map(p => p.dataset.condition)")) == ["t1_only", "t1_stir"]
    assert section.locator('[data-figure="forest"] svg').count() == 1
    assert "t1_only" in section.locator("[data-intra]").inner_text()
    shot(admin_page, "32-conditions-reader-study", full_page=True)
    report = admin.get(f"{site.base}/api/projects/{project}/reader-study/report.html").text
    assert "T1 only" in report and "T1 + STIR" in report
    assert admin_page.errors == []
