"""Incremental consensus refits (issue 16): a no-op refit returns at once, new readings update only their items,
a change below the watermark and the schedule fit everything again."""

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling.models import (
    Assignment,
    Case,
    ConsensusRun,
    ItemPosterior,
    OutboxMessage,
    ReaderConfusion,
    Reading,
    ReadingValue,
)
from labeling.services.adjudication import adjudication_record
from labeling.services.consensus import (
    MAX_ITER,
    SMOOTHING,
    TOL,
    FitState,
    consensus_full_refits_due,
    consensus_refit_lesion,
    consensus_refit_project,
    lesion_data,
)
from labeling.services.readings import CONSENSUS_REFIT_TASK, reading_correct, reading_submit
from ml.consensus import fit
from tests.labeling.factories import StudyFactory, UserFactory, full_values
from tests.labeling.test_consensus import _read, campaign, refits_at_once

WRITES = ("INSERT", "UPDATE", "DELETE")
CONSENSUS_TABLES = (
    "labeling_consensusrun",
    "labeling_itemposterior",
    "labeling_readerconfusion",
    "labeling_auditevent",
)


def _read_new_case(project, users, rng, value_of=None):
    """A new case that every reader in ``users`` reads (simulated as in ``campaign``); returns it."""
    parsed = project.scheme.parsed
    case = Case.objects.create(project=project, study=StudyFactory(modality=parsed.modality))
    truth = {
        i.key: int(rng.random() < 0.3) if len(i.values) == 2 else int(rng.integers(0, 5))
        for i in parsed.form_items
    }
    for name, user in users.items():
        assignment = Assignment.objects.create(project=project, case=case, reader=user, session=1)
        values = [
            {
                "joint": j,
                "region": r,
                "lesion": lesion,
                "value": _read(rng, name, v, len(parsed.lesion_values(lesion))),
            }
            for (j, r, lesion), v in truth.items()
        ]
        reading_submit(actor=user, assignment=assignment, values=values)
    return case


def _full_hash(project, run):
    """The data hash a full fit of the run's lesion gives today."""
    smoothing = SMOOTHING[run.model]
    params = {
        "smoothing": [smoothing.diagonal, smoothing.off_diagonal, smoothing.prior],
        "max_iter": MAX_ITER,
        "tol": TOL,
    }
    return lesion_data(project, run.lesion).data_hash(run.model, params)


def _expected(project, lesion, run_before):
    """A full fit of the lesion's current data, warm-started from ``run_before``'s parameters."""
    state = FitState.load(run_before.state)
    data = lesion_data(project, lesion)
    assert np.array_equal(data.reader_ids, state.reader_ids)  # the same readers, in the same order
    model = run_before.model
    result = fit(
        data.items,
        data.readers,
        data.labels,
        data.n_classes,
        model=model,
        gold=data.gold,
        smoothing=SMOOTHING[model],
        n_items=len(data.item_keys),
        n_readers=len(data.reader_ids),
        max_iter=MAX_ITER,
        tol=TOL,
        init=state.warm,
    )
    return data, result


@pytest.mark.parametrize(("scheme_name", "lesion"), [("mri_sij", "bme"), ("ct_sij", "mny_grade")])
def test_new_readings_update_the_run_in_place_as_a_full_fit_from_its_warm_start_would(
    db, scheme_name, lesion
):
    project, users, _ = campaign(n_cases=12, scheme_name=scheme_name, seed=3)
    first = consensus_refit_lesion(project=project, lesion=lesion)
    before = ConsensusRun.objects.get(pk=first.pk)
    untouched = {(p.case_id, p.joint, p.region): p.posterior for p in ItemPosterior.objects.filter(run=first)}
    rng = np.random.default_rng(4)
    new_cases = [_read_new_case(project, users, rng) for _ in range(2)]

    run = consensus_refit_lesion(project=project, lesion=lesion)

    assert run.pk == first.pk and run.is_current and run.n_incremental == 1
    data, expected = _expected(project, lesion, before)
    assert run.n_items == len(data.item_keys) and run.n_readings == len(data.items)
    assert run.watermark == max(r.pk for r in project.readings.all())
    index = {data.item(i): i for i in range(len(data.item_keys))}
    changed = ItemPosterior.objects.filter(run=run, case__in=new_cases)
    assert changed.count() == len(new_cases) * len(data.regions)
    for p in changed:
        i = index[(p.case_id, p.joint, p.region)]
        np.testing.assert_allclose(p.posterior, expected.posterior[i], atol=2e-6)
        assert p.label == data.values[expected.labels[i]] and p.n_readings == len(users)
    for c in ReaderConfusion.objects.filter(run=run):
        k = int(np.flatnonzero(data.reader_ids == c.reader_id)[0])
        np.testing.assert_allclose(c.matrix, expected.confusion[k], atol=2e-6)
    np.testing.assert_allclose(run.prior, expected.prior, atol=2e-6)
    # the other items keep the posteriors of the last full fit until the scheduled one
    for p in ItemPosterior.objects.filter(run=run).exclude(case__in=new_cases):
        assert p.posterior == untouched[(p.case_id, p.joint, p.region)]


def test_a_refit_with_nothing_new_writes_nothing_and_reads_no_reading_values(db):
    project, _, _ = campaign(n_cases=6)
    runs = consensus_refit_project(project_id=project.pk)
    with CaptureQueriesContext(connection) as queries:
        again = consensus_refit_project(project_id=project.pk)
    assert [r.pk for r in again] == [r.pk for r in runs]
    sql = [q["sql"] for q in queries.captured_queries]
    writes = [s for s in sql if s.lstrip().upper().startswith(WRITES)]
    assert not [s for s in writes if any(t in s for t in CONSENSUS_TABLES)]
    assert not [s for s in sql if "labeling_readingvalue" in s]  # no full read of the values
    assert all(r.n_incremental == 0 for r in ConsensusRun.objects.filter(project=project))


def test_a_new_reading_reads_only_its_cases_values(db):
    project, users, _ = campaign(n_cases=6)
    consensus_refit_project(project_id=project.pk)
    case = _read_new_case(project, users, np.random.default_rng(5))
    with CaptureQueriesContext(connection) as queries:
        runs = consensus_refit_project(project_id=project.pk)
    value_reads = [q["sql"] for q in queries.captured_queries if "labeling_readingvalue" in q["sql"]]
    assert len(value_reads) == len(runs) == 5  # one read per lesion, of the new case only
    assert all(f"IN ({case.pk})" in s for s in value_reads)
    assert all(r.n_incremental == 1 for r in runs)


def test_a_correction_below_the_watermark_fits_everything_again(db):
    project, users, _ = campaign(n_cases=8)
    first = consensus_refit_lesion(project=project, lesion="bme")
    reading = users["good"].readings.first()
    values = [
        {"joint": v.joint, "region": v.region, "lesion": v.lesion, "value": 1 - v.value}
        for v in reading.values.all()
    ]
    reading_correct(actor=users["good"], reading=reading, values=values, reason="flipped")

    run = consensus_refit_lesion(project=project, lesion="bme")

    assert run.pk != first.pk and run.n_incremental == 0
    assert run.data_hash == _full_hash(project, run)
    assert not ConsensusRun.objects.get(pk=first.pk).is_current


def test_the_schedule_fits_incrementally_updated_runs_in_full_once(db):
    project, users, _ = campaign(n_cases=6)
    consensus_refit_project(project_id=project.pk)
    assert consensus_full_refits_due() == []
    _read_new_case(project, users, np.random.default_rng(6))
    updated = consensus_refit_project(project_id=project.pk)
    assert consensus_full_refits_due() == [project.pk]
    message = OutboxMessage.objects.filter(task=CONSENSUS_REFIT_TASK).latest("pk")
    assert message.args == [project.pk, None, True]

    full = consensus_refit_project(project_id=project.pk, full=True)

    assert {r.pk for r in full}.isdisjoint(r.pk for r in updated)
    for run in full:
        assert run.n_incremental == 0
        assert run.data_hash == _full_hash(project, run)
        assert ItemPosterior.objects.filter(run=run).count() == run.n_items
    assert [r.pk for r in consensus_refit_project(project_id=project.pk, full=True)] == [r.pk for r in full]
    assert consensus_full_refits_due() == []


@pytest.mark.django_db(transaction=True)
def test_two_incremental_refits_at_once_apply_the_new_readings_once():
    project, users, _ = campaign(n_cases=6, readers=("good", "average"))
    first = consensus_refit_lesion(project=project, lesion="fat")
    _read_new_case(project, users, np.random.default_rng(7))
    assert refits_at_once(project, "fat") == [first.pk, first.pk]
    run = ConsensusRun.objects.get(pk=first.pk)
    assert run.n_incremental == 1 and run.n_items == 7 * 8
    assert ItemPosterior.objects.filter(run=run).count() == run.n_items


def test_a_new_reader_joins_an_incremental_refit(db):
    project, users, _ = campaign(n_cases=6, readers=("good", "average"))
    first = consensus_refit_lesion(project=project, lesion="erosion")
    newcomer = {"noisy": UserFactory(username=f"noisy-late-{project.pk}")}
    case = _read_new_case(project, newcomer | users, np.random.default_rng(8))
    run = consensus_refit_lesion(project=project, lesion="erosion")
    assert run.pk == first.pk and run.n_readers == 3
    assert ReaderConfusion.objects.filter(run=run).count() == 3
    assert all(p.n_readings == 3 for p in ItemPosterior.objects.filter(run=run, case=case))


def test_an_adjudication_and_its_revision_are_incremental_and_clamp_the_item(db):
    project, _, _ = campaign(n_cases=8, readers=("noisy", "average"))
    first = consensus_refit_lesion(project=project, lesion="erosion")
    item = ItemPosterior.objects.filter(run=first).order_by("max_posterior", "pk").first()
    adjudicator = UserFactory()
    for value in (1 - item.label, item.label):  # a decision, then a revision of it
        adjudication_record(
            actor=adjudicator,
            project=project,
            case_id=item.case_id,
            joint=item.joint,
            region=item.region,
            lesion="erosion",
            value=value,
            reason="erosion on T1",
        )
        before = ConsensusRun.objects.get(pk=first.pk)
        run = consensus_refit_lesion(project=project, lesion="erosion")
        after = ItemPosterior.objects.get(run=run, case_id=item.case_id, joint=item.joint, region=item.region)
        assert run.pk == first.pk and after.clamped and after.label == value and run.n_clamped == 1
    assert run.n_incremental == 2
    # the revision's step equals a full fit warm-started from the parameters before it
    data, expected = _expected(project, "erosion", before)
    for p in ItemPosterior.objects.filter(run=run, case_id=item.case_id):
        np.testing.assert_allclose(
            p.posterior, expected.posterior[data.item_keys.searchsorted(_key(data, p))], atol=2e-6
        )
    assert consensus_refit_lesion(project=project, lesion="erosion").n_incremental == 2  # nothing new


def _key(data, posterior):
    return posterior.case_id * len(data.regions) + data.regions.index((posterior.joint, posterior.region))


def test_a_reading_committed_late_below_the_watermark_is_drift_and_fits_everything_again(db):
    project, users, _ = campaign(n_cases=4)
    with connection.cursor() as cursor:  # a submit that took its id now and commits after the next refit
        cursor.execute("SELECT nextval(pg_get_serial_sequence('labeling_reading', 'id'))")
        (late_id,) = cursor.fetchone()
    case = _read_new_case(project, {"good": users["good"]}, np.random.default_rng(9))
    first = consensus_refit_lesion(project=project, lesion="bme")
    assert first.watermark > late_id
    assignment = Assignment.objects.create(project=project, case=case, reader=users["noisy"], session=1)
    late = Reading(
        id=late_id,
        assignment=assignment,
        project=project,
        case=case,
        reader=users["noisy"],
        session=1,
        scheme=project.scheme,
    )
    late.save(force_insert=True)
    ReadingValue.objects.bulk_create(
        ReadingValue(reading=late, joint=v["joint"], region=v["region"], lesion=v["lesion"], value=v["value"])
        for v in full_values(project.scheme.parsed, 1)
    )

    run = consensus_refit_lesion(project=project, lesion="bme")

    assert run.pk != first.pk and run.n_incremental == 0 and run.n_readings == first.n_readings + 8
    assert run.data_hash == _full_hash(project, run)
