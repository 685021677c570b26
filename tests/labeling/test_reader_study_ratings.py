"""The reader study ranks reads by their confidence ratings where the scheme asks for them (issue 14): the
empirical AUC over 1–5 ratings, not over the 0/1 calls, and the result, CSV and report say which rating."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest

from labeling.models import Case, Membership
from labeling.selectors import worklist_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.reader_study import (
    ANALYSIS_VERSION,
    reader_study_compute,
    reader_study_csv,
    study_data,
)
from labeling.services.reader_study_report import reader_study_html
from labeling.services.readings import reading_submit
from ml.readerstudy.metrics import auc
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, mri_study, scheme

CUTS = (0.3, 0.9, 1.5, 2.1)  # latent → confidence 1..5; 4 and 5 are called present


def confidence(truth: int, rng: random.Random, separation: float) -> int:
    """A simulated reader's 1–5 confidence: an equal-variance binormal latent value cut at CUTS."""
    latent = truth * separation + rng.gauss(0.0, 1.0)
    return 1 + sum(latent > c for c in CUTS)


def mri_study_with_ratings(
    version: int = 2,
    n_cases: int = 20,
    n_readers: int = 2,
    seed: int = 3,
    separation: tuple[float, float] = (1.2, 2.2),
):
    """An MRI project (sequential aided reads, phantom references) read by simulated readers whose latent
    separation is ``separation`` (unaided, aided); values follow from their ratings (v1: values only)."""
    project = ProjectFactory(
        scheme=scheme("mri_sij", version), ai_aided_reads=True, readers_per_case=n_readers
    )
    readers = [UserFactory() for _ in range(n_readers)]
    for user in readers:
        MembershipFactory(project=project, user=user, role=Membership.Role.READER)
    parsed = project.scheme.parsed
    rng = random.Random(seed)
    truth = {}
    for i in range(n_cases):
        reference = [
            {"joint": it.joint, "region": it.region, "lesion": it.lesion, "value": int(rng.random() < 0.12)}
            for it in parsed.form_items
        ]
        case = Case.objects.create(project=project, study=mri_study(), label=f"mri-{i}", reference=reference)
        truth[case.pk] = reference
    assignments_generate(actor=None, project=project, seed=seed)
    labels = dict(project.cases.values_list("id", "label"))
    for index, reader in enumerate(readers):
        for _ in range(4 * n_cases):
            a = worklist_for_reader(reader=reader, project_id=project.pk).first()
            if a is None:
                break
            read_rng = random.Random(f"{seed}:{labels[a.case_id]}:{index}:{a.aided}")
            values = []
            for row in truth[a.case_id]:
                rating = confidence(row["value"], read_rng, separation[a.aided])
                out = {k: row[k] for k in ("joint", "region", "lesion")} | {"value": int(rating >= 4)}
                if version >= 2:
                    out["rating"] = rating
                values.append(out)
            reading_submit(actor=reader, assignment=a, values=values)
    return project


def test_the_auc_ranks_reads_by_their_confidence_and_exceeds_the_auc_of_the_calls(db):
    project = mri_study_with_ratings()
    analysis = reader_study_compute(project_id=project.pk, reference="phantom")
    assert analysis is not None and analysis.result["version"] == ANALYSIS_VERSION >= 3
    bme = next(e for e in analysis.result["endpoints"] if e["key"] == "bme")
    assert bme["rating"] == "confidence" and bme["call_from"] == 4
    assert (
        "confidence 1–5" in bme["rating_label"] and "highest over the joint's regions" in bme["rating_label"]
    )

    # independently: per reader × condition, the Mann-Whitney AUC over the joint's highest 1-5 rating, and the
    # AUC of the 0/1 calls (rating >= 4) of the same reads
    rows = study_data(project, "phantom").rows["bme"]
    assert {v for *_, v in rows} <= {1, 2, 3, 4, 5} and len({v for *_, v in rows}) == 5
    estimates = {
        (r["reader"], r["condition"]): r["estimate"] for r in bme["analyses"]["auc"]["reader_estimates"]
    }
    reader_ids = sorted({r for r, *_ in rows})
    names = sorted({name for name, _ in estimates})
    assert len(names) == len(reader_ids) == 2
    gains = []
    for reader_id, name in zip(reader_ids, names, strict=True):
        for condition in ("aided", "unaided"):
            sel = [(t, v) for r, _, c, t, v in rows if r == reader_id and c == condition]
            truth = np.array([t for t, _ in sel], dtype=bool)
            ratings = np.array([v for _, v in sel], dtype=float)
            by_rating = auc(truth, ratings)
            by_call = auc(truth, (ratings >= 4).astype(float))
            assert estimates[name, condition] == pytest.approx(by_rating, abs=1e-12)
            # the calls' AUC is (sensitivity + specificity) / 2, one operating point: the ratings add the rest
            sens, spec = (ratings[truth] >= 4).mean(), (ratings[~truth] < 4).mean()
            assert by_call == pytest.approx((sens + spec) / 2, abs=1e-12)
            gains.append(by_rating - by_call)
    assert np.mean(gains) > 0.03 and min(gains) > 0, gains
    # sensitivity and specificity still call a read present from confidence 4
    sens = bme["analyses"]["sensitivity"]["reader_estimates"][0]
    assert 0 < sens["estimate"] < 1

    table = list(csv.DictReader(io.StringIO(reader_study_csv(analysis.result))))
    assert {r["rating"] for r in table if r["endpoint"] == "bme"} == {bme["rating_label"]}
    html = reader_study_html("MRI", analysis.result)
    assert "Rating used for the ROC analysis:" in html and "data-rating='confidence'" in html


def test_reads_without_the_ratings_the_scheme_asks_for_are_ranked_by_their_values_and_say_so(db):
    """A project moved to mri_sij v2 after v1 reads: the endpoint falls back to the 0/1 values, and says so."""
    project = mri_study_with_ratings(version=1, n_cases=8)
    project.scheme = scheme("mri_sij", 2)
    project.save()
    analysis = reader_study_compute(project_id=project.pk, reference="phantom")
    assert analysis is not None
    bme = next(e for e in analysis.result["endpoints"] if e["key"] == "bme")
    assert bme["rating"] == "value" and bme["call_from"] == 1
    assert "lack the confidence rating" in bme["rating_label"]
    assert {v for *_, v in study_data(project, "phantom").rows["bme"]} == {0, 1}


def test_the_report_renders_intervals_the_analysis_could_not_estimate(db):
    """An OR-Hillis statistic, df or interval that is 0/0 (e.g. a jackknife variance of 0) is stored as None
    (MrmcResult.to_dict); the report showed a 500 for it in CI. It shows a dash, and the forest plot draws the
    point alone, or leaves out a row with no estimate."""
    project = mri_study_with_ratings(n_cases=10)
    result = reader_study_compute(project_id=project.pk, reference="phantom").result
    bme = next(e for e in result["endpoints"] if e["key"] == "bme")
    overall = bme["analyses"]["auc"]["differences"][0]
    overall.update(ci_lower=None, ci_upper=None, std_err=None, df=None, p_value=None)
    first, second = bme["analyses"]["auc_fixed_readers"]["reader_differences"]
    first.update(ci_lower=None, ci_upper=None, p_value=None)
    second.update(estimate=None, ci_lower=None, ci_upper=None, p_value=None)
    bme["analyses"]["auc"]["global_test"].update(value=None, df2=None, p_value=None)

    section = reader_study_html("MRI", result).split("data-endpoint='bme'")[1].split("</section>")[0]
    assert section.count('data-figure="forest"') == 1
    assert section.count('class="forest-reader"') == 1 and section.count('class="forest-total"') == 1
    assert "— to —" in section


def test_the_patient_level_modified_new_york_endpoint_is_rated_by_the_grades(db):
    """Ordinal grades are their own ratings for the derived patient endpoint too: max(min(L, R), max(L, R) − 1)
    orders patients by the grades and is ≥ 2 exactly when the modified New York rule holds."""
    from tests.labeling.test_reader_study import ct_study

    project, _admin, _readers = ct_study(n_cases=12)
    data = study_data(project, "phantom")
    patient = next(e for e in data.endpoints if e.key == "mny_patient")
    assert (patient.rating, patient.call_from) == ("grade", 2)
    ratings = {v for *_, v in data.rows["mny_patient"]}
    assert ratings <= {0, 1, 2, 3, 4} and len(ratings) > 2
    for left in range(5):
        for right in range(5):
            score = max(min(left, right), max(left, right) - 1)
            assert (score >= 2) == ((left >= 2 and right >= 2) or left >= 3 or right >= 3)
