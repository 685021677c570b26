"""The reader-study analysis of a project: aided vs unaided reads → MRMC per endpoint, cached by data hash,
served as JSON, CSV and an HTML report, computed by a real Celery worker (issue 14)."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest

from config.celery import app
from labeling.models import Assignment, Case, Membership, ReaderStudyAnalysis
from labeling.selectors import reader_pseudonyms, worklist_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.reader_study import reader_study_compute, study_data
from labeling.services.readings import reading_submit
from ml.readerstudy import mrmc
from tests.labeling.factories import MembershipFactory, ProjectFactory, StudyFactory, UserFactory, scheme
from tests.labeling.processes import celery_worker_cmd, process_env, running, wait_until


def grades(truth: int, rng: random.Random, p_off: float) -> int:
    """A reader's mNY grade: the truth, or one grade off with probability ``p_off``."""
    if rng.random() < p_off:
        return min(4, max(0, truth + rng.choice((-1, 1))))
    return truth


def ct_study(n_cases: int = 30, n_readers: int = 3, seed: int = 1, **settings):
    """A CT project with AI-aided reads, phantom references, and every read done by simulated readers whose
    grades are one off in 45% of joints unaided and 10% aided."""
    project = ProjectFactory(
        scheme=scheme("ct_sij"), ai_aided_reads=True, readers_per_case=n_readers, **settings
    )
    readers = [UserFactory() for _ in range(n_readers)]
    for user in readers:
        MembershipFactory(project=project, user=user, role=Membership.Role.READER)
    admin = UserFactory()
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    rng = random.Random(seed)
    truth = {}
    for i in range(n_cases):
        left, right = rng.choice((0, 1, 1, 2, 3, 4)), rng.choice((0, 1, 2, 2, 3, 4))
        ref = [
            {"joint": "left", "region": "joint", "lesion": "mny_grade", "value": left},
            {"joint": "right", "region": "joint", "lesion": "mny_grade", "value": right},
        ]
        case = Case.objects.create(
            project=project, study=StudyFactory(modality="CT"), label=f"ct-{i}", reference=ref
        )
        truth[case.pk] = (left, right)
    assignments_generate(actor=None, project=project, seed=seed)
    labels = dict(project.cases.values_list("id", "label"))
    for index, reader in enumerate(readers):
        for _ in range(4 * n_cases):  # bounded: each case is read unaided then aided
            a = worklist_for_reader(reader=reader, project_id=project.pk).first()
            if a is None:
                break
            p_off = 0.10 if a.aided else 0.45
            left, right = truth[a.case_id]
            # seeded by case label, reader number and condition, not by database ids or reading order
            rng = random.Random(f"{seed}:{labels[a.case_id]}:{index}:{a.aided}")
            values = [
                {
                    "joint": "left",
                    "region": "joint",
                    "lesion": "mny_grade",
                    "value": grades(left, rng, p_off),
                },
                {
                    "joint": "right",
                    "region": "joint",
                    "lesion": "mny_grade",
                    "value": grades(right, rng, p_off),
                },
            ]
            reading_submit(actor=reader, assignment=a, values=values)
    return project, admin, readers


def test_the_analysis_finds_the_simulated_gain_and_equals_ml_readerstudy_on_the_same_reads(db):
    project, _admin, _readers = ct_study()
    assert Assignment.objects.filter(project=project, status="submitted").count() == 2 * 3 * 30
    analysis = reader_study_compute(project_id=project.pk, reference="phantom")
    assert analysis is not None
    result = analysis.result
    assert result["reference"] == "phantom" and result["design"] == "sequential"
    by_key = {e["key"]: e for e in result["endpoints"]}
    assert set(by_key) == {"mny_grade_ge2", "mny_patient"}
    joint = by_key["mny_grade_ge2"]
    assert (joint["n_readers"], joint["n_units"], joint["n_reads"]) == (3, 60, 360)
    diff = joint["analyses"]["auc"]["differences"][0]
    assert (diff["first"], diff["second"]) == ("aided", "unaided")
    assert diff["estimate"] > 0.02  # the simulated aid: 45% -> 10% of grades one off

    # the same reads through ml.readerstudy directly give the same numbers
    rows = study_data(project, "phantom").rows["mny_grade_ge2"]
    names = reader_pseudonyms(project=project)
    direct = mrmc(
        [names[r] for r, *_ in rows],
        [u for _, u, *_ in rows],
        [c for _, _, c, _, _ in rows],
        [t for *_, t, _ in rows],
        [v for *_, v in rows],
        conditions=("aided", "unaided"),
    )
    assert diff["estimate"] == pytest.approx(direct.differences[0].estimate, abs=1e-12)
    assert joint["analyses"]["auc"]["global_test"]["p_value"] == pytest.approx(
        direct.global_test.p_value, abs=1e-12
    )
    assert len(joint["analyses"]["auc_fixed_readers"]["reader_differences"]) == 3
    assert set(joint["roc"]) == {"aided", "unaided"}
    avg = joint["roc"]["aided"]["average"]
    mean_auc = np.mean(
        [r["estimate"] for r in joint["analyses"]["auc"]["reader_estimates"] if r["condition"] == "aided"]
    )
    assert np.trapezoid(avg["tpr"], avg["fpr"]) == pytest.approx(mean_auc, abs=0.01)
    assert joint["agreement"]["n_raters"] == 3 and joint["agreement"]["ci_lower"] is not None


def test_unchanged_reads_reuse_the_analysis_and_a_new_correction_makes_a_new_one(db):
    project, _admin, _readers = ct_study(n_cases=12)
    first = reader_study_compute(project_id=project.pk, reference="phantom")
    again = reader_study_compute(project_id=project.pk, reference="phantom")
    assert first is not None and again is not None and again.pk == first.pk
    assert ReaderStudyAnalysis.objects.filter(project=project).count() == 1
    from labeling.services.readings import reading_correct

    reading = project.readings.filter(assignment__aided=True).first()
    values = [{"joint": j, "region": "joint", "lesion": "mny_grade", "value": 4} for j in ("left", "right")]
    reading_correct(actor=reading.reader, reading=reading, values=values, reason="misclick")
    changed = reader_study_compute(project_id=project.pk, reference="phantom")
    assert changed is not None and changed.pk != first.pk and changed.data_hash != first.data_hash


def test_only_project_admins_see_the_reader_study_and_a_bad_reference_is_named(db, client_for):
    project, admin, readers = ct_study(n_cases=4)
    url = f"/api/projects/{project.pk}/reader-study/"
    assert client_for(readers[0]).get(url).status_code == 403
    assert client_for(UserFactory()).get(url).status_code == 404
    bad = client_for(admin).get(url, {"reference": "guess"})
    assert bad.status_code == 400 and "reference" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_worker_computes_the_study_and_the_api_serves_json_csv_and_a_self_contained_report(
    client_for, tmp_path
):
    project, admin, _readers = ct_study(n_cases=20)
    client = client_for(admin)
    base = f"/api/projects/{project.pk}/reader-study"
    app.control.purge()
    with running(celery_worker_cmd(), process_env(), tmp_path / "worker.log"):
        first = client.get(f"{base}/")
        assert first.status_code == 202 and first.json()["status"] == "computing"
        wait_until(
            lambda: client.get(f"{base}/").status_code == 200, timeout_s=120, what="the worker's analysis"
        )
    body = client.get(f"{base}/").json()
    assert body["status"] == "ready" and body["data_hash"] == first.json()["data_hash"]
    ep = next(e for e in body["endpoints"] if e["key"] == "mny_grade_ge2")
    auc = ep["analyses"]["auc"]
    assert (
        auc["differences"][0]["ci_lower"]
        < auc["differences"][0]["estimate"]
        < auc["differences"][0]["ci_upper"]
    )

    table = client.get(f"{base}.csv")
    assert table.status_code == 200 and table["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.content.decode())))
    diff_row = next(
        r
        for r in rows
        if r["endpoint"] == "mny_grade_ge2" and r["metric"] == "auc" and r["row"] == "difference"
    )
    assert float(diff_row["estimate"]) == pytest.approx(auc["differences"][0]["estimate"])
    assert diff_row["comparison"] == "aided - unaided" and diff_row["reference"] == "phantom"

    report = client.get(f"{base}/report.html", {"download": 1})
    assert report.status_code == 200 and "attachment" in report["Content-Disposition"]
    html = report.content.decode()
    assert html.count('data-figure="roc"') == 2 and html.count('data-figure="forest"') == 2
    assert "Hillis" in html and "Reference standard:" in html and "ground truth (each case" in html
    assert f"{auc['differences'][0]['estimate']:.3f}" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_consensus_reference_of_a_reader_never_uses_their_own_reads(db):
    """reference=consensus: each reader is scored against the Dawid-Skene consensus of the *other* readers'
    unaided reads; correcting one reader's unaided reads leaves that reader's reference unchanged."""
    from labeling.services.readings import reading_correct

    project, _admin, readers = ct_study(n_cases=16, n_readers=3)
    analysis = reader_study_compute(project_id=project.pk, reference="consensus")
    assert analysis is not None and analysis.result["reference"] == "consensus"
    joint = next(e for e in analysis.result["endpoints"] if e["key"] == "mny_grade_ge2")
    assert joint["n_readers"] == 3 and "auc" in joint["analyses"]
    assert "needs a reference common to all readers" in joint["analyses"]["sensitivity"]["error"]

    def truths(reader_id):
        rows = study_data(project, "consensus").rows["mny_grade_ge2"]
        return sorted((u, c, t) for r, u, c, t, _ in rows if r == reader_id)

    target = readers[0]
    before_own, before_other = truths(target.pk), truths(readers[1].pk)
    for reading in project.readings.filter(reader=target, assignment__aided=False):
        values = [
            {"joint": j, "region": "joint", "lesion": "mny_grade", "value": 4} for j in ("left", "right")
        ]
        reading_correct(actor=target, reading=reading, values=values, reason="all ankylosed")
    assert truths(target.pk) == before_own  # their own reads are not in their reference
    assert truths(readers[1].pk) != before_other  # but they are in the others'
