"""Adjudication by case (issue 15, findings 5, 7, 8): the case queue with reasons and thresholds, single reads
last, filters; the disputed finding's slice; contour disputes settled by a reader's line, the consensus line or
a drawn one, which become the contour model's gold; readers' values and calibration explained; blinding."""

from __future__ import annotations

import re

import numpy as np
import pytest

from labeling.models import Assignment, Case, ContourAdjudication, Membership, Project, ReaderConfusion
from labeling.services.consensus import consensus_refit_project
from labeling.services.readings import reading_submit
from ml.selectors import snapshot_labels
from tests.labeling.factories import MembershipFactory, UserFactory, full_values, mri_study

DISPUTED = ("left", "iliac_upper", "bme")


def _line(offset_mm: float, n: int = 20) -> list[list[float]]:
    return [[30.0 + offset_mm - 6.0 * t, 0.0, 40.0 - 40.0 * t] for t in np.linspace(0, 1, n)]


def _values(project: Project, disputed: int) -> list[dict]:
    rows = full_values(project.scheme.parsed)
    for row in rows:
        if (row["joint"], row["region"], row["lesion"]) == DISPUTED:
            row["value"] = disputed
    return rows


@pytest.fixture
def disputes(world):
    """Case 1 read by three readers (two say bme 1 on the left upper iliac quadrant, one says 0; their left
    joint lines agree on slice 1 and lie 9 mm apart on slice 2); case 2 read by one reader only."""
    Project.objects.filter(pk=world.project.pk).update(adjudication_threshold=1.0)
    world.project.refresh_from_db()
    third = UserFactory(username="reader3")
    MembershipFactory(project=world.project, user=third, role=Membership.Role.READER)
    a3 = Assignment.objects.create(project=world.project, case=world.case, reader=third, session=1)
    series = world.case.study.series.get(description="T1").series_uid
    for assignment, value, wild in [
        (world.assignment, 1, 0.5),
        (world.other_assignment, 1, 0.4),
        (a3, 0, 9.0),
    ]:
        reading_submit(
            actor=assignment.reader,
            assignment=assignment,
            values=_values(world.project, value),
            contours=[
                {"joint": "left", "series_uid": series, "slice_index": 1, "points_mm": _line(0.1)},
                {"joint": "left", "series_uid": series, "slice_index": 2, "points_mm": _line(wild)},
            ],
        )
    single = Case.objects.create(project=world.project, study=mri_study(), label="case-2")
    a = Assignment.objects.create(project=world.project, case=single, reader=third, session=1)
    reading_submit(actor=third, assignment=a, values=_values(world.project, 1))
    consensus_refit_project(project_id=world.project.pk)
    world.series = series
    world.single = single
    world.third = third
    return world


def _queue(client, project, **params):
    response = client.get(f"/api/projects/{project.pk}/adjudication/cases/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_queue_lists_cases_with_their_items_reasons_and_thresholds(disputes, client_for):
    body = _queue(client_for(disputes.adjudicator), disputes.project)
    assert body["threshold"] == 1.0 and body["contour_threshold_mm"] == 3.0
    assert [c["case_label"] for c in body["results"]] == ["case-1", "case-2"]  # one row per case
    first = body["results"][0]
    assert first["reasons"] == ["low_posterior", "disagreement", "contour"]
    item = next(i for i in first["items"] if (i["joint"], i["region"], i["lesion"]) == DISPUTED)
    codes = {r["code"]: r["text"] for r in item["reasons"]}
    assert codes["disagreement"] == "readers disagree: 0, 1, 1"
    assert "below the threshold 1.00" in codes["low_posterior"]
    assert item["values_read"] == [0, 1, 1] and not item["single_read"]
    assert item["slice_index"] == 1  # the median slice the readers traced the left joint on
    contour = next(i for i in first["items"] if i["kind"] == "contour")
    assert contour["slice_index"] == 2 and contour["disagreement_mm"] > 3.0
    assert "above the threshold 3.0 mm" in contour["reasons"][0]["text"]
    # the disputed items before the agreed low-certainty ones: disagreement has the lowest certainty here
    assert first["items"][0]["max_posterior"] == first["lowest_posterior"]


def test_single_read_items_are_marked_and_last_or_left_out(disputes, client_for):
    client = client_for(disputes.adjudicator)
    last = _queue(client, disputes.project)["results"][-1]
    assert last["case_label"] == "case-2" and last["n_single_read"] == last["n_items"] > 0
    assert all(i["single_read"] and i["n_readers"] == 1 for i in last["items"])
    assert [c["case_label"] for c in _queue(client, disputes.project, single_read="exclude")["results"]] == [
        "case-1"
    ]


def test_filters_by_lesion_joint_and_reason(disputes, client_for):
    client = client_for(disputes.adjudicator)
    bme = _queue(client, disputes.project, lesion="bme")["results"]
    assert {i["lesion"] for c in bme for i in c["items"]} == {"bme"}
    right = _queue(client, disputes.project, joint="right")["results"]
    assert {i["joint"] for c in right for i in c["items"]} == {"right"}
    disagree = _queue(client, disputes.project, reason="disagreement")["results"]
    assert [(i["joint"], i["region"], i["lesion"]) for c in disagree for i in c["items"]] == [DISPUTED]
    contours = _queue(client, disputes.project, reason="contour")["results"]
    assert [(i["kind"], i["slice_index"]) for c in contours for i in c["items"]] == [("contour", 2)]
    bad = client.get(f"/api/projects/{disputes.project.pk}/adjudication/cases/", {"reason": "mood"})
    assert bad.status_code == 400 and "reason" in bad.content.decode()


def test_an_adjudicated_item_leaves_the_queue(disputes, client_for):
    client = client_for(disputes.adjudicator)
    j, r, lesion = DISPUTED
    response = client.post(
        f"/api/projects/{disputes.project.pk}/adjudication/record/",
        {"case_id": disputes.case.pk, "joint": j, "region": r, "lesion": lesion, "value": 1, "reason": "T1"},
        format="json",
    )
    assert response.status_code == 201
    assert _queue(client, disputes.project, reason="disagreement")["results"] == []


def test_the_item_explains_each_readers_value_and_opens_on_the_traced_slice(disputes, client_for):
    j, r, lesion = DISPUTED
    body = (
        client_for(disputes.adjudicator)
        .get(f"/api/projects/{disputes.project.pk}/adjudication/items/{disputes.case.pk}/{j}/{r}/{lesion}/")
        .json()
    )
    assert body["focus_slice"] == 1 and body["threshold"] == 1.0
    for reading in body["readings"]:
        explanation = reading["explanation"]
        state = "present" if reading["value"] else "absent"
        assert explanation["meaning"].startswith(f"a {reading['value']} (BME {state}) from this reader")
        assert "this reader" in explanation["sentence"] and explanation["tendency"]
        assert "grade" not in explanation["sentence"]  # a binary finding: misses and reports, not grades
        assert abs(sum(explanation["believed"]) - 1) < 1e-6


def test_a_contour_dispute_shows_every_line_and_is_settled_by_a_readers_line(disputes, client_for):
    client = client_for(disputes.adjudicator)
    url = f"/api/projects/{disputes.project.pk}/adjudication/contours/{disputes.case.pk}/left/2/"
    body = client.get(url).json()
    assert body["flagged"] and body["threshold_mm"] == 3.0 and len(body["consensus"]) > 2
    assert [r["reader"] for r in body["readers"]] == ["Reader 1", "Reader 2", "Reader 3"]
    assert body["readers"][2]["mean_mm"] > body["readers"][0]["mean_mm"]
    record = f"/api/projects/{disputes.project.pk}/adjudication/contours/record/"
    common = {"case_id": disputes.case.pk, "joint": "left", "slice_index": 2}
    assert (
        client.post(
            record, {**common, "choice": "reader", "reader": "Reader 9", "reason": "x"}, format="json"
        )
    ).status_code == 400
    assert (
        client.post(
            record, {**common, "choice": "reader", "reader": "Reader 1", "reason": " "}, format="json"
        )
    ).status_code == 400
    ok = client.post(
        record,
        {**common, "choice": "reader", "reader": "Reader 1", "reason": "follows the cortex"},
        format="json",
    )
    assert ok.status_code == 201, ok.content
    decision = ContourAdjudication.objects.get()
    assert decision.source_reader == disputes.reader and decision.points_mm == _line(0.5)
    assert _queue(client, disputes.project, reason="contour")["results"] == []
    assert client.get(f"/api/projects/{disputes.project.pk}/adjudication/contours/").json()["count"] == 0
    assert client.get(url).json()["decisions"][0] == {
        **client.get(url).json()["decisions"][0],
        "choice": "reader",
        "reader": "Reader 1",
        "current": True,
    }


def test_the_consensus_or_a_drawn_line_and_a_later_decision_supersedes(disputes, client_for):
    client = client_for(disputes.adjudicator)
    record = f"/api/projects/{disputes.project.pk}/adjudication/contours/record/"
    common = {"case_id": disputes.case.pk, "joint": "left", "slice_index": 2, "reason": "checked"}
    assert client.post(record, {**common, "choice": "consensus"}, format="json").status_code == 201
    bad = client.post(record, {**common, "choice": "drawn", "points_mm": [[1, 2, "x"]]}, format="json")
    assert bad.status_code == 400 and "points_mm" in bad.content.decode()
    drawn = [[29.0, 0.0, 40.0], [27.0, 0.0, 20.0], [24.0, 0.0, 0.0]]
    second = client.post(record, {**common, "choice": "drawn", "points_mm": drawn}, format="json")
    assert second.status_code == 201 and second.json()["supersedes"] is not None
    current = ContourAdjudication.objects.filter(superseded_by__isnull=True).get()
    assert current.source == "drawn" and current.points_mm == drawn
    # the adjudicated line is the contour model's gold: it replaces the consensus line of its slice
    labels = snapshot_labels(project=disputes.project)
    lines = {c["slice_index"]: c for c in labels["contours"][disputes.case.pk]["consensus"]}
    assert lines[2]["points_mm"] == drawn and lines[2]["adjudicated"]
    assert "adjudicated" not in lines[1]
    assert labels["contour_gold"] == {disputes.case.pk}


def test_choosing_the_consensus_or_a_drawn_line_with_a_blank_reader_as_the_page_sends_it(
    disputes, client_for
):
    """The contour view sends ``reader: ""`` unless a reader's line is chosen; that blank was a 400 ("This field
    may not be blank"), so neither the consensus line nor a drawn line could be recorded from the page."""
    client = client_for(disputes.adjudicator)
    record = f"/api/projects/{disputes.project.pk}/adjudication/contours/record/"
    common = {
        "case_id": disputes.case.pk,
        "joint": "left",
        "slice_index": 2,
        "reader": "",
        "reason": "checked",
    }
    consensus = client.post(record, {**common, "choice": "consensus"}, format="json")
    assert consensus.status_code == 201, consensus.content
    drawn = [[29.0, 0.0, 40.0], [24.0, 0.0, 0.0]]
    line = client.post(record, {**common, "choice": "drawn", "points_mm": drawn}, format="json")
    assert line.status_code == 201, line.content
    current = ContourAdjudication.objects.get(superseded_by__isnull=True)
    assert (current.source, current.source_reader, current.points_mm) == ("drawn", None, drawn)
    # a reader's line still needs the reader
    blank = client.post(record, {**common, "choice": "reader"}, format="json")
    assert blank.status_code == 400 and "reader" in blank.json().get("fields", blank.json())


def test_blinding_an_adjudicator_with_a_case_to_read_sees_none_of_it(disputes, client_for):
    Assignment.objects.create(project=disputes.project, case=disputes.single, reader=disputes.adjudicator)
    client = client_for(disputes.adjudicator)
    base = f"/api/projects/{disputes.project.pk}/adjudication"
    assert client.get(f"{base}/cases/").status_code == 404
    assert client.get(f"{base}/contours/{disputes.case.pk}/left/2/").status_code == 404
    response = client.post(
        f"{base}/contours/record/",
        {
            "case_id": disputes.case.pk,
            "joint": "left",
            "slice_index": 2,
            "choice": "consensus",
            "reason": "x",
        },
        format="json",
    )
    assert response.status_code == 404
    assert not ContourAdjudication.objects.exists()


def test_readers_get_no_queue_and_an_adjudicator_never_sees_a_case_they_read(disputes, client_for):
    assert client_for(disputes.reader).get(
        f"/api/projects/{disputes.project.pk}/adjudication/cases/"
    ).status_code in (
        403,
        404,
    )
    MembershipFactory(project=disputes.project, user=disputes.third, role=Membership.Role.ADJUDICATOR)
    body = _queue(client_for(disputes.third), disputes.project)
    assert body["results"] == []  # reader 3 read both cases
    url = f"/api/projects/{disputes.project.pk}/adjudication/contours/{disputes.case.pk}/left/2/"
    assert client_for(disputes.third).get(url).status_code == 404


def test_the_calibration_explains_the_agreement_figure(disputes, client_for):
    body = client_for(disputes.third).get(f"/api/projects/{disputes.project.pk}/calibration/").json()
    bme = next(row for row in body if row["lesion"] == "bme")
    items = "item" if bme["n"] == 1 else "items"
    assert bme["explanation"].startswith(
        f"You gave the consensus value on {bme['agree']} of {bme['n']} {items} ("
    )
    assert bme["model"] and "; the consensus model believes you " in bme["explanation"]
    # spoken to the reader: "you miss", "you agree", never "you misses" / "you agrees"
    assert not re.search(r"\byou (reads|agrees|misses|reports|always \w+s|never \w+s)\b", bme["explanation"])
    assert bme["explanation"].endswith(".")


def test_the_calibration_without_a_row_in_the_consensus_model_speaks_from_the_counts(disputes, client_for):
    """A reader the current consensus run has no confusion row for (they joined after it) is told what their
    own counts say, in the second person."""
    ReaderConfusion.objects.filter(reader=disputes.third).delete()
    body = client_for(disputes.third).get(f"/api/projects/{disputes.project.pk}/calibration/").json()
    bme = next(row for row in body if row["lesion"] == "bme")
    assert bme["model"] is None and bme["observed"]
    assert "consensus model" not in bme["explanation"]
    assert re.search(r"\); you (always |never )?(agree|miss|report|read)\b", bme["explanation"]), bme[
        "explanation"
    ]
