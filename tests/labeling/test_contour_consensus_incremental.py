"""The contour consensus reads only what arrived since its last refit, and still ends as a full refit would.

A refit used to read every contour of the project and lock every consensus slice on each reading, so its cost
grew with the project. Each test checks the incremental answer against ``full=True`` on the same data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from labeling.models import (
    Assignment,
    Case,
    ContourConsensus,
    ContourConsensusMark,
    Membership,
    ReaderContourReliability,
)
from labeling.services.contour_consensus import contour_consensus_refit
from labeling.services.projects import project_update
from labeling.services.readings import reading_correct, reading_submit
from tests.labeling.factories import MembershipFactory, UserFactory, full_values, mri_study


def _line(offset_mm: float) -> list[list[float]]:
    return [[30.0 + offset_mm - 6.0 * t, 0.0, 40.0 - 40.0 * t] for t in np.linspace(0, 1, 20)]


def _read(world: Any, case: Case, reader: Any, offsets: dict[int, float]) -> Any:
    """``reader`` reads ``case`` with one left-joint contour per slice, each ``offsets[slice]`` mm off."""
    series = case.study.series.get(description="T1").series_uid
    assignment, _ = Assignment.objects.get_or_create(
        project=world.project, case=case, reader=reader, session=1
    )
    return reading_submit(
        actor=reader,
        assignment=assignment,
        values=full_values(world.project.scheme.parsed),
        contours=[
            {"joint": "left", "series_uid": series, "slice_index": s, "points_mm": _line(off)}
            for s, off in offsets.items()
        ],
    )


def _state(project: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    slices = list(
        ContourConsensus.objects.filter(project=project)
        .order_by("case_id", "joint", "slice_index")
        .values_list("case_id", "joint", "slice_index", "points_mm", "flagged", "reader_distances")
    )
    rates = list(
        ReaderContourReliability.objects.filter(project=project)
        .order_by("reader_id")
        .values_list("reader_id", "n_contours", "mean_mm", "p95_mm")
    )
    return slices, rates


@pytest.fixture
def two_cases(world: Any) -> tuple[Case, Case]:
    """Case 1 and case 2, each read by the world's two readers; the consensus refitted once."""
    second = Case.objects.create(project=world.project, study=mri_study(), label="case-2")
    for case in (world.case, second):
        _read(world, case, world.reader, {0: 0.0, 1: 0.5})
        _read(world, case, world.other_reader, {0: 0.3, 1: 0.4})
    assert contour_consensus_refit(project=world.project)["read_all"] == 1  # the first refit
    return world.case, second


def test_a_refit_reads_only_the_cases_read_since_and_ends_as_a_full_refit(world, two_cases):
    _, second = two_cases
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    _read(world, second, third, {0: 0.2, 1: 9.0, 2: 0.1})

    counts = contour_consensus_refit(project=world.project)
    assert counts == {"slices": 3, "recomputed": 3, "removed": 0, "read_all": 0}  # case 2's slices only
    incremental = _state(world.project)
    flagged = [(case, s) for case, _joint, s, _points, flag, _d in incremental[0] if flag]
    assert flagged == [(second.pk, 1)]  # reader 3 is 9 mm off there
    assert {r[0] for r in incremental[1]} == {world.reader.pk, world.other_reader.pk, third.pk}

    assert contour_consensus_refit(project=world.project, full=True) == {
        "slices": 5,
        "recomputed": 0,
        "removed": 0,
        "read_all": 1,
    }
    assert _state(world.project) == incremental
    assert contour_consensus_refit(project=world.project) == {
        "slices": 0,
        "recomputed": 0,
        "removed": 0,
        "read_all": 0,
    }


def test_a_correction_that_drops_a_slice_removes_it_and_rates_the_readers_again(world, two_cases):
    first, _second = two_cases
    reading = first.readings.get(reader=world.reader)
    before = dict(
        ReaderContourReliability.objects.filter(project=world.project).values_list("reader_id", "n_contours")
    )
    series = first.study.series.get(description="T1").series_uid
    reading_correct(
        actor=world.reader,
        reading=reading,
        values=full_values(world.project.scheme.parsed),
        contours=[{"joint": "left", "series_uid": series, "slice_index": 0, "points_mm": _line(0.0)}],
        reason="slice 1 was not the joint line",
    )
    counts = contour_consensus_refit(project=world.project)
    assert counts["recomputed"] == 1 and counts["removed"] == 0  # slice 1 keeps the other reader's contour
    lone = ContourConsensus.objects.get(project=world.project, case=first, slice_index=1)
    assert lone.n_contours == 1 and lone.reader_distances[0][0] == world.other_reader.pk
    after = dict(
        ReaderContourReliability.objects.filter(project=world.project).values_list("reader_id", "n_contours")
    )
    assert after == {reader: n - 1 for reader, n in before.items()}  # one slice fewer traced by both
    state = _state(world.project)
    contour_consensus_refit(project=world.project, full=True)
    assert _state(world.project) == state


def test_a_reading_that_commits_below_the_mark_makes_the_next_refit_read_everything(world, two_cases):
    # a reading whose id was drawn before the last refit's highest, committed after it: simulated by moving the
    # mark above the ids to come, with the fingerprint of what it had seen
    mark = ContourConsensusMark.objects.get(project=world.project)
    ContourConsensusMark.objects.filter(pk=mark.pk).update(watermark=mark.watermark + 1000)
    _, second = two_cases
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    _read(world, second, third, {0: 0.2})

    counts = contour_consensus_refit(project=world.project)
    assert counts["read_all"] == 1 and counts["recomputed"] == 1
    assert ContourConsensus.objects.get(project=world.project, case=second, slice_index=0).n_contours == 3


def test_a_new_threshold_flags_the_slices_again_at_once_without_refitting_them(world, two_cases):
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    _read(world, two_cases[0], third, {0: 0.1, 1: 5.0})
    contour_consensus_refit(project=world.project)
    flagged = ContourConsensus.objects.filter(project=world.project, flagged=True)
    assert flagged.count() == 1

    project_update(actor=world.admin, project=world.project, contour_disagreement_mm=50.0)
    assert not flagged.exists()  # before any refit: the adjudicators' queue follows the setting
    assert contour_consensus_refit(project=world.project)["recomputed"] == 0
    assert not flagged.exists()
    project_update(actor=world.admin, project=world.project, contour_disagreement_mm=1.0)
    assert flagged.count() == 1
    # a threshold changed without the service (a shell, a migration): the next refit flags by it
    world.project.contour_disagreement_mm = 50.0
    world.project.save(update_fields=["contour_disagreement_mm"])
    assert flagged.count() == 1
    contour_consensus_refit(project=world.project)
    assert not flagged.exists()


def test_a_refitted_slice_keeps_its_row_and_shows_when_it_changed(world, two_cases):
    _, second = two_cases
    rows = {
        (r.case_id, r.slice_index): (r.pk, r.updated_at)
        for r in ContourConsensus.objects.filter(project=world.project)
    }
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    _read(world, second, third, {0: 0.2})

    assert contour_consensus_refit(project=world.project)["recomputed"] == 1
    after = {
        (r.case_id, r.slice_index): (r.pk, r.updated_at, r.n_contours)
        for r in ContourConsensus.objects.filter(project=world.project)
    }
    assert {key: pk for key, (pk, *_rest) in after.items()} == {key: pk for key, (pk, _) in rows.items()}
    _pk, refitted_at, n = after[(second.pk, 0)]
    assert n == 3 and refitted_at > rows[(second.pk, 0)][1]
    assert [after[key][1] for key in rows if key != (second.pk, 0)] == [
        at for key, (_pk, at) in rows.items() if key != (second.pk, 0)
    ]
