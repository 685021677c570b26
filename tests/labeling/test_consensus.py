"""Consensus refits in the product: readings → runs, posteriors, reader confusion; gold, adjudication, edges."""

import json
import threading
from collections import defaultdict

import numpy as np
import pytest
from django.db import connection

from labeling.models import (
    Assignment,
    Case,
    ConsensusRun,
    ItemPosterior,
    Membership,
    ReaderConfusion,
    ReadingValue,
)
from labeling.services.adjudication import adjudication_record
from labeling.services.agreement import agreement_csv, agreement_report
from labeling.services.consensus import consensus_refit_lesion, consensus_refit_project
from labeling.services.readings import reading_correct, reading_submit
from tests.labeling.factories import (
    MembershipFactory,
    ProjectFactory,
    StudyFactory,
    UserFactory,
    full_values,
    scheme,
)

SENSITIVITY = {"good": 0.95, "average": 0.8, "noisy": 0.6}
SPECIFICITY = {"good": 0.97, "average": 0.9, "noisy": 0.7}


def campaign(n_cases=40, readers=("good", "average", "noisy"), scheme_name="mri_sij", seed=0, sessions=1):
    """A project whose simulated readers read every case; returns (project, users, truth per case)."""
    rng = np.random.default_rng(seed)
    project = ProjectFactory(scheme=scheme(scheme_name))
    users = {name: UserFactory(username=f"{name}-{project.pk}") for name in readers}
    for user in users.values():
        MembershipFactory(project=project, user=user, role=Membership.Role.READER)
    parsed = project.scheme.parsed
    truth = {}
    for _ in range(n_cases):
        case = Case.objects.create(project=project, study=StudyFactory(modality=parsed.modality))
        truth[case.pk] = {
            i.key: int(rng.choice(i.values, p=_prior(len(i.values)))) for i in parsed.form_items
        }
        for name, user in users.items():
            for session in range(1, sessions + 1):
                assignment = Assignment.objects.create(
                    project=project, case=case, reader=user, session=session
                )
                values = [
                    {
                        "joint": j,
                        "region": r,
                        "lesion": lesion,
                        "value": _read(rng, name, v, len(item_values)),
                    }
                    for (j, r, lesion), v in truth[case.pk].items()
                    for item_values in [parsed.lesion_values(lesion)]
                ]
                reading_submit(actor=user, assignment=assignment, values=values)
    return project, users, truth


def _prior(k):
    return [0.8, 0.2] if k == 2 else [0.3, 0.2, 0.2, 0.2, 0.1]


def _read(rng, name, value, k):
    if k == 2:
        keep = SENSITIVITY[name] if value == 1 else SPECIFICITY[name]
        return value if rng.random() < keep else 1 - value
    spread = {"good": 0.4, "average": 0.7, "noisy": 1.2}[name]
    return int(np.clip(round(value + rng.normal(0, spread)), 0, k - 1))


def test_refit_recovers_the_truth_and_each_readers_quality(db):
    project, users, truth = campaign(n_cases=60)
    runs = consensus_refit_project(project_id=project.pk)
    assert sorted(r.lesion for r in runs) == ["ankylosis", "bme", "erosion", "fat", "sclerosis"]
    bme = next(r for r in runs if r.lesion == "bme")
    assert bme.model == "full" and bme.n_items == 60 * 8 and bme.n_readings == 3 * 60 * 8
    assert ItemPosterior.objects.filter(run=bme).count() == 60 * 8
    votes = defaultdict(list)
    for case_id, joint, region, value in ReadingValue.objects.filter(
        reading__project=project, lesion="bme"
    ).values_list("reading__case_id", "joint", "region", "value"):
        votes[(case_id, joint, region)].append(value)
    correct = majority = 0
    for p in ItemPosterior.objects.filter(run=bme):
        true = truth[p.case_id][(p.joint, p.region, "bme")]
        correct += p.label == true
        majority += (sum(votes[(p.case_id, p.joint, p.region)]) >= 2) == true
        assert abs(sum(p.posterior) - 1) < 1e-5
    assert correct >= majority
    assert correct / (60 * 8) >= 0.93
    sens = {c.reader_id: c.matrix[1][1] for c in ReaderConfusion.objects.filter(run=bme)}
    assert sens[users["good"].pk] > sens[users["noisy"].pk]


def test_unchanged_data_reuses_the_run_and_a_correction_makes_a_new_one(db):
    project, users, _ = campaign(n_cases=8)
    first = consensus_refit_lesion(project=project, lesion="bme")
    assert consensus_refit_lesion(project=project, lesion="bme") == first
    assert ConsensusRun.objects.filter(lesion="bme").count() == 1
    reading = users["good"].readings.first()
    values = [
        {"joint": v.joint, "region": v.region, "lesion": v.lesion, "value": 1 - v.value}
        for v in reading.values.all()
    ]
    reading_correct(actor=users["good"], reading=reading, values=values, reason="flipped")
    second = consensus_refit_lesion(project=project, lesion="bme")
    assert second.pk != first.pk and second.n_readings == first.n_readings  # superseded reading left out
    first.refresh_from_db()
    assert second.is_current and not first.is_current


def test_gold_and_adjudicated_items_are_clamped_and_leave_the_queue(db):
    project, _, truth = campaign(n_cases=10, readers=("noisy", "average"))
    gold_case = project.cases.first()
    reference = [
        {"joint": j, "region": r, "lesion": lesion, "value": 1} for (j, r, lesion) in truth[gold_case.pk]
    ]
    Case.objects.filter(pk=gold_case.pk).update(is_gold=True, reference=reference)
    run = consensus_refit_lesion(project=project, lesion="erosion")
    clamped = ItemPosterior.objects.filter(run=run, case=gold_case)
    assert clamped.count() == 8 and all(p.clamped and p.label == 1 and p.posterior == [0, 1] for p in clamped)
    other = ItemPosterior.objects.filter(run=run).exclude(case=gold_case).first()
    adjudicator = UserFactory()
    adjudication_record(
        actor=adjudicator,
        project=project,
        case_id=other.case_id,
        joint=other.joint,
        region=other.region,
        lesion="erosion",
        value=1 - other.label,
        reason="erosion on T1",
    )
    run2 = consensus_refit_lesion(project=project, lesion="erosion")
    after = ItemPosterior.objects.get(run=run2, case_id=other.case_id, joint=other.joint, region=other.region)
    assert after.clamped and after.label == 1 - other.label


def test_ct_grades_use_the_ordinal_model_and_beat_the_median_vote(db):
    project, _, truth = campaign(n_cases=100, scheme_name="ct_sij")
    (run,) = consensus_refit_project(project_id=project.pk)
    assert run.lesion == "mny_grade" and run.model == "ordinal" and run.n_classes == 5
    conf = ReaderConfusion.objects.filter(run=run)
    assert all(c.spread is not None and c.spread > 0 for c in conf)
    votes = defaultdict(list)
    for case_id, joint, value in ReadingValue.objects.filter(reading__project=project).values_list(
        "reading__case_id", "joint", "value"
    ):
        votes[(case_id, joint)].append(value)
    hits = median = 0
    for p in run.posteriors.all():
        true = truth[p.case_id][(p.joint, "joint", "mny_grade")]
        hits += p.label == true
        median += round(float(np.median(votes[(p.case_id, p.joint)]))) == true
    assert hits >= median and hits / run.n_items >= 0.75


def test_edge_cases_never_crash_or_emit_nan(db):
    empty = ProjectFactory()
    assert consensus_refit_project(project_id=empty.pk) == []
    json.dumps(agreement_report(project=empty, n_boot=10), allow_nan=False)
    # one reader, one reading, everyone agreeing
    project, _, _ = campaign(n_cases=1, readers=("good",))
    runs = consensus_refit_project(project_id=project.pk)
    assert runs and all(np.isfinite(run.log_likelihood) for run in runs)
    report = agreement_report(project=project, n_boot=10)
    text = json.dumps(report, allow_nan=False)
    assert '"value": null' in text  # α is undefined with one reader, reported as null
    assert "alpha" in agreement_csv(report)
    assert report["total_score"]["icc"]["value"] is None
    assert report["total_score"]["undefined_reason"] == "not enough cases read by 2+ readers"
    for p in ItemPosterior.objects.filter(run__project=project):
        assert all(np.isfinite(p.posterior)) and np.isfinite(p.entropy)


def test_agreement_report_has_a_cell_per_item_with_cis(db):
    project, _, _ = campaign(n_cases=25, sessions=2)
    consensus_refit_project(project_id=project.pk)
    report = agreement_report(project=project, n_boot=50)
    assert len(report["cells"]) == 28
    cell = next(c for c in report["cells"] if c["lesion"] == "bme" and c["region"] == "iliac_upper")
    assert cell["n_cases"] == 25 and cell["n_readers"] == 3
    alpha = cell["alpha"]
    assert alpha["value"] is not None and alpha["ci_low"] <= alpha["value"] <= alpha["ci_high"]
    assert {r["reader"] for r in report["intra_reader"]} == {"Reader 1", "Reader 2", "Reader 3"}
    for row in report["intra_reader"]:  # repeat-session κ has a bootstrap CI over cases, like α and κ
        kappa = row["kappa"]
        if kappa["value"] is not None:
            assert kappa["ci_low"] is not None and kappa["ci_low"] <= kappa["value"] <= kappa["ci_high"]
    assert report["total_score"]["form"] == "ICC2" and report["total_score"]["icc"]["value"] is not None
    assert report["total_score"]["undefined_reason"] is None
    assert len(report["readers"]) == 5 * 3


def test_a_refit_request_older_than_the_newest_reading_is_skipped(db):
    project, _, _ = campaign(n_cases=2)
    assert consensus_refit_project(project_id=project.pk, requested_at="2000-01-01T00:00:00+00:00") == []
    assert consensus_refit_project(project_id=project.pk, requested_at="2999-01-01T00:00:00+00:00")


def refits_at_once(project, lesion: str, n: int = 2) -> list[int]:
    """Refit ``lesion`` in ``n`` threads at once (each with its own connection); the runs' ids, none failing."""
    results, errors = [], []

    def refit():
        try:
            results.append(consensus_refit_lesion(project=project, lesion=lesion).pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refit) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_refits_at_once_store_one_run():
    project, _, _ = campaign(n_cases=10)
    results = refits_at_once(project, "fat")
    assert len(set(results)) == 1
    assert ConsensusRun.objects.filter(project=project, lesion="fat").count() == 1


def _line(offset_mm: float, n: int = 20) -> list[list[float]]:
    """A 40 mm joint line on a coronal slice (y = 0), shifted along x by ``offset_mm``."""
    return [[30.0 + offset_mm - 6.0 * t, 0.0, 40.0 - 40.0 * t] for t in np.linspace(0, 1, n)]


def test_contour_consensus_weights_readers_flags_disagreement_and_rates_readers(world, client_for):
    from labeling.models import ContourConsensus, ReaderContourReliability
    from labeling.services.contour_consensus import contour_consensus_refit

    series = world.case.study.series.get(description="T1").series_uid
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    a3 = Assignment.objects.create(project=world.project, case=world.case, reader=third, session=1)
    values = full_values(world.project.scheme.parsed)
    offsets = {world.assignment: (0.0, 0.5), world.other_assignment: (0.3, 0.4), a3: (0.2, 9.0)}
    for assignment, (slice0, slice1) in offsets.items():
        reading_submit(
            actor=assignment.reader,
            assignment=assignment,
            values=values,
            contours=[
                {"joint": "left", "series_uid": series, "slice_index": 0, "points_mm": _line(slice0)},
                {"joint": "left", "series_uid": series, "slice_index": 1, "points_mm": _line(slice1)},
            ],
        )
    assert contour_consensus_refit(project=world.project) == {
        "slices": 2,
        "recomputed": 2,
        "removed": 0,
        "read_all": 1,
    }
    calm, wild = ContourConsensus.objects.order_by("slice_index")
    assert calm.n_contours == 3 and not calm.flagged
    assert abs(np.asarray(calm.points_mm)[0][0] - 30.17) < 0.2  # near the agreeing readers
    assert wild.flagged  # reader 3 is 9 mm off on slice 1
    consensus_x = np.asarray(wild.points_mm)[:, 0].mean()
    assert abs(consensus_x - (27.0 + 0.45)) < 1.0  # the outlier is down-weighted
    rel = {r.reader_id: r for r in ReaderContourReliability.objects.all()}
    assert rel[third.pk].mean_mm > 3 * rel[world.reader.pk].mean_mm
    assert contour_consensus_refit(project=world.project)["recomputed"] == 0  # unchanged inputs
    body = (
        client_for(world.adjudicator).get(f"/api/projects/{world.project.pk}/adjudication/contours/").json()
    )
    assert [row["slice_index"] for row in body["results"]] == [1]
    names = {
        r["reader"]
        for r in client_for(world.admin).get(f"/api/projects/{world.project.pk}/contours/reliability/").json()
    }
    assert names == {"Reader 1", "Reader 2", "Reader 3"}


def test_a_project_refit_also_refits_the_contour_consensus(world):
    from labeling.models import ContourConsensus

    series = world.case.study.series.get(description="T1").series_uid
    reading_submit(
        actor=world.reader,
        assignment=world.assignment,
        values=full_values(world.project.scheme.parsed),
        contours=[{"joint": "right", "series_uid": series, "slice_index": 2, "points_mm": _line(0)}],
    )
    consensus_refit_project(project_id=world.project.pk)
    assert ContourConsensus.objects.filter(project=world.project, joint="right", slice_index=2).exists()
