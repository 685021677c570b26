import pytest

from labeling.exceptions import Conflict, InvalidInput
from labeling.models import (
    Assignment,
    AuditEvent,
    ImmutableError,
    OutboxMessage,
    Reading,
    ReadingValue,
)
from labeling.schemes import SchemeError
from labeling.services.identity import assignment_uids
from labeling.services.readings import reading_correct, reading_submit
from tests.labeling.factories import contour, full_values


def series_uid(world, description="T1"):
    return world.case.study.series.get(description=description).series_uid


def test_submit_stores_values_contours_and_closes_the_assignment(world):
    values = full_values(world.project.scheme.parsed, 1)
    reading = reading_submit(
        actor=world.reader,
        assignment=world.assignment,
        values=values,
        contours=[contour(series_uid(world), 1)],
    )
    world.assignment.refresh_from_db()
    assert world.assignment.status == Assignment.Status.SUBMITTED
    assert world.assignment.submitted_at is not None
    assert reading.values.count() == 28
    assert set(reading.values.values_list("value", flat=True)) == {1}
    (stored,) = reading.contours.all()
    assert stored.start_mm == [30.0, 0.0, 40.0] and stored.end_mm == [24.0, 0.0, 0.0]
    assert stored.sop_instance_uid.endswith(".1")
    event = AuditEvent.objects.get(action="reading.submit")
    assert event.actor == world.reader and event.object_id == str(reading.pk)


def test_submitting_other_values_twice_is_a_conflict(world):
    parsed = world.project.scheme.parsed
    reading_submit(actor=world.reader, assignment=world.assignment, values=full_values(parsed, 0))
    with pytest.raises(Conflict, match="submitted already"):
        reading_submit(actor=world.reader, assignment=world.assignment, values=full_values(parsed, 1))
    with pytest.raises(Conflict, match="submitted already"):  # same values, another contour
        reading_submit(
            actor=world.reader,
            assignment=world.assignment,
            values=full_values(parsed, 0),
            contours=[contour(series_uid(world), 1)],
        )
    assert Reading.objects.count() == 1


def test_the_same_reading_again_is_the_stored_one(world, client_for):
    """Issue 16: a client whose submit got a 503 (the database went down around the commit) or no answer
    retries with the same reading; when the first attempt was stored, the retry is a 201 with that reading,
    nothing stored twice (it was a 409 "submitted already", an error for a reading that is safe)."""
    client = client_for(world.reader)
    shown = assignment_uids(world.assignment).pseudo(series_uid(world))  # the reader's name for it
    body = {"values": full_values(world.project.scheme.parsed, 1), "contours": [contour(shown, 1)]}
    key = world.assignment.key
    first = client.post(f"/api/assignments/{key}/reading/", body, format="json")
    assert first.status_code == 201, first.content
    again = client.post(f"/api/assignments/{key}/reading/", body, format="json")
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    assert Reading.objects.count() == 1 and ReadingValue.objects.count() == 28
    assert AuditEvent.objects.filter(action="reading.submit").count() == 1
    assert OutboxMessage.objects.count() == 1  # one consensus refit queued, not two
    other = dict(body, values=full_values(world.project.scheme.parsed, 0))
    assert client.post(f"/api/assignments/{key}/reading/", other, format="json").status_code == 409


def test_a_bad_reading_writes_nothing(world):
    values = full_values(world.project.scheme.parsed)
    values[4]["value"] = 7
    with pytest.raises(SchemeError):
        reading_submit(actor=world.reader, assignment=world.assignment, values=values)
    bad_contour = contour(series_uid(world), slice_index=99)
    with pytest.raises(InvalidInput, match="slice 99"):
        reading_submit(
            actor=world.reader,
            assignment=world.assignment,
            values=full_values(world.project.scheme.parsed),
            contours=[bad_contour],
        )
    world.assignment.refresh_from_db()
    assert world.assignment.status == Assignment.Status.OPEN
    assert not Reading.objects.exists() and not ReadingValue.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"joint": "middle"}, "contours[0].joint"),
        ({"points_mm": [[0, 0, 0]]}, "contours[0].points_mm"),
        ({"points_mm": [[0, 0, 0], [1, 2]]}, "contours[0].points_mm[1]"),
        ({"points_mm": [[0, 0, 0], [1, 2, float("nan")]]}, "contours[0].points_mm[1]"),
        ({"slice_index": -1}, "contours[0].slice_index"),
        ({"series_uid": ""}, "contours[0].series_uid"),
    ],
)
def test_bad_contours_name_the_field(world, change, field):
    with pytest.raises(InvalidInput) as err:
        reading_submit(
            actor=world.reader,
            assignment=world.assignment,
            values=full_values(world.project.scheme.parsed),
            contours=[{**contour(series_uid(world)), **change}],
        )
    assert err.value.field == field


def test_readings_cannot_be_changed_in_place(world):
    reading = reading_submit(
        actor=world.reader, assignment=world.assignment, values=full_values(world.project.scheme.parsed)
    )
    reading.reason = "edited"
    with pytest.raises(ImmutableError):
        reading.save()
    with pytest.raises(ImmutableError):
        Reading.objects.filter(pk=reading.pk).update(reason="edited")
    with pytest.raises(ImmutableError):
        reading.delete()
    with pytest.raises(ImmutableError):
        Reading.objects.all().delete()


def test_a_correction_supersedes_and_keeps_both(world):
    parsed = world.project.scheme.parsed
    original = reading_submit(actor=world.reader, assignment=world.assignment, values=full_values(parsed, 0))
    correction = reading_correct(
        actor=world.reader, reading=original, values=full_values(parsed, 1), reason="missed the erosions"
    )
    assert correction.supersedes == original
    assert list(Reading.objects.current()) == [correction]
    assert set(original.values.values_list("value", flat=True)) == {0}
    assert set(correction.values.values_list("value", flat=True)) == {1}
    with pytest.raises(Conflict, match="newest"):
        reading_correct(actor=world.reader, reading=original, values=full_values(parsed, 1), reason="again")
    with pytest.raises(InvalidInput):
        reading_correct(actor=world.reader, reading=correction, values=full_values(parsed, 0), reason=" ")
    assert AuditEvent.objects.filter(action="reading.correct").count() == 1
