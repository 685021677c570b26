"""Issue 14 end to end: a crossover reader study planned through the API, read by simulated readers through
the API, analysed by the Celery worker, shown in the browser (ROC curves and forest plot drawn), report
downloaded. Runs on the browser suite's real gunicorn + Celery worker + Chromium (tests/e2e/conftest.py)."""

from __future__ import annotations

import random

import pytest

from tests.e2e.conftest import Site, project_create, shot, wait_for

# Seeded (committed) and flushed once per module by conftest.site, as in test_browser.py.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

N_CASES = 16
READERS = ("reader1", "reader2")


def _grades(rng: random.Random, truth: int, p_off: float) -> int:
    return min(4, max(0, truth + rng.choice((-1, 1)))) if rng.random() < p_off else truth


def _plan_and_read(site: Site) -> tuple[int, dict[str, int]]:
    admin = site.api("admin")
    project = project_create(
        site,
        admin,
        {
            "name": "E2E reader study",
            "scheme": "ct_sij",
            "readers_per_case": 2,
            "ai_aided_reads": True,
            "reader_study_design": "crossover",
            "washout_days": 0,
            "washout_cases": 0,
        },
        READERS,
    )
    rng = random.Random(14)
    truth = {}
    for i in range(N_CASES):
        uid = f"1.2.826.0.1.3680043.10.1337.14.{i + 1}"
        r = admin.post(f"{site.base}/api/studies/register/", json={"study_uid": uid, "modality": "CT"})
        assert r.status_code == 201, r.text
        left, right = rng.choice((0, 1, 2, 3, 4)), rng.choice((0, 1, 2, 3, 4))
        reference = [
            {"joint": j, "region": "joint", "lesion": "mny_grade", "value": v}
            for j, v in (("left", left), ("right", right))
        ]
        r = admin.post(
            f"{site.base}/api/projects/{project}/cases/create/",
            json={"study_uid": uid, "label": f"rs-{i + 1}", "reference": reference},
        )
        assert r.status_code == 201, r.text
        truth[r.json()["id"]] = (left, right)
    plan = admin.post(f"{site.base}/api/projects/{project}/assignments/generate/", json={"seed": 3})
    assert plan.status_code == 200, plan.text
    assert plan.json()["created"] == 2 * N_CASES and plan.json()["created_crossover"] == 2 * N_CASES

    counts = {"aided_first": 0}

    # readers never see case ids (issue 13, hole 2): the admin's assignment list maps each read to its case
    def case_of(key: str) -> int:
        rows = admin.get(f"{site.base}/api/projects/{project}/assignments/?limit=10000").json()["results"]
        return next(row["case_id"] for row in rows if row["key"] == key)

    for name in READERS:
        reader = site.api(name)
        seen: dict[int, str] = {}
        for _ in range(3 * N_CASES):  # bounded: two reads per case
            nxt = reader.post(f"{site.base}/api/projects/{project}/worklist/next/")
            if nxt.status_code == 204:
                break
            a = nxt.json()
            condition = "aided" if a["aided"] else "unaided"
            assert "id" not in a and "case_id" not in a  # readers address reads by key only
            case_id = case_of(a["key"])
            if case_id not in seen:
                counts["aided_first"] += condition == "aided"
            seen[case_id] = condition
            p_off = 0.1 if a["aided"] else 0.5  # the AI helps: fewer grades one off
            left, right = truth[case_id]
            values = [
                {"joint": j, "region": "joint", "lesion": "mny_grade", "value": _grades(rng, t, p_off)}
                for j, t in (("left", left), ("right", right))
            ]
            r = reader.post(f"{site.base}/api/assignments/{a['key']}/reading/", json={"values": values})
            assert r.status_code == 201, r.text
        assert len(seen) == N_CASES
    return project, counts


def test_a_crossover_reader_study_from_plan_to_report(site: Site, new_page, tmp_path) -> None:
    project, counts = _plan_and_read(site)
    assert counts["aided_first"] == N_CASES  # half of each reader's cases were read with the AI first

    admin = site.api("admin")
    url = f"{site.base}/api/projects/{project}/reader-study/"
    assert admin.get(url).status_code in (200, 202)
    wait_for(
        lambda: admin.get(url).status_code == 200, timeout_s=180, what="the worker's reader-study analysis"
    )
    study = admin.get(url).json()
    assert study["design"] == "crossover" and study["reference"] == "phantom"
    ep = next(e for e in study["endpoints"] if e["key"] == "mny_grade_ge2")
    gain = ep["analyses"]["auc"]["differences"][0]["estimate"]

    page = new_page("admin")
    page.goto(f"{site.base}/manage/projects/{project}/reader-study")
    section = page.locator('section[data-endpoint="mny_grade_ge2"]')
    section.wait_for()
    assert section.locator('svg[data-figure="roc"] path.roc-average').count() == 2  # aided and unaided
    assert section.locator('svg[data-figure="roc"] path.roc-reader').count() == 4  # 2 readers x 2 conditions
    assert section.locator('[data-figure="forest"] svg circle').count() == 3  # 2 readers + all readers
    shown = float(section.locator('[data-gain="auc"]').inner_text())  # 3 decimals, rounded by the browser
    assert abs(shown - gain) <= 0.0005 + 1e-9
    shot(page, "20-reader-study")

    with page.expect_download() as info:
        page.click('a[data-report="download"]')
    saved = tmp_path / "report.html"
    info.value.save_as(saved)
    html = saved.read_text()
    assert 'data-figure="roc"' in html and 'data-figure="forest"' in html and "Obuchowski" in html
    assert f"{gain:.3f}" in html
    assert page.errors == []
