"""Confidence ratings (issue 14): a scheme version may ask, per binary item, for a 5-point confidence or a 0–100
probability; the reading stores it, and a reading that does not fit is a 400 naming the field."""

from __future__ import annotations

import pytest

from labeling.models import Reading, ReadingValue
from labeling.schemes import SCHEME_DIR, SchemeError, scheme_load_file, schemes_from_files
from labeling.services.schemes import schemes_load
from tests.labeling.factories import full_values, scheme

SCHEMES = {(s.name, s.version): s for s in schemes_from_files()}
MRI1, MRI2, CT = SCHEMES["mri_sij", 1], SCHEMES["mri_sij", 2], SCHEMES["ct_sij", 1]

PROBABILITY_SCHEME = """
scheme: probe_sij
version: 1
modality: MR
joints: [left, right]
rating_scales:
  probability: {kind: probability, present_from: 50}
lesions:
  bme:       {unit: joint, value: binary, rating: probability}
  sclerosis: {unit: joint, value: binary}
"""


def test_mri_v2_asks_a_five_point_confidence_for_every_binary_item_and_v1_is_unchanged():
    assert [i.key for i in MRI2.form_items] == [i.key for i in MRI1.form_items]
    assert all(i.rating is None for i in MRI1.form_items)
    scales = {i.rating for i in MRI2.form_items}
    assert len(scales) == 1
    (confidence,) = scales
    assert confidence is not None
    assert (confidence.low, confidence.high, confidence.present_from) == (1, 5, 4)
    assert dict(confidence.labels)[1] == "definitely absent" and dict(confidence.labels)[3] == "equivocal"
    assert [confidence.value_of(r) for r in range(1, 6)] == [0, 0, 0, 1, 1]
    assert all(i.rating is None for i in CT.form_items)  # the mNY grade is its own rating


def test_v1_files_are_never_edited():
    """Released versions are immutable: v2 is a new file, v1 loads to the same content as before."""
    assert "rating" not in (SCHEME_DIR / "mri_sij.v1.yaml").read_text()


def test_the_value_follows_from_the_rating_when_left_out():
    values = full_values(MRI2)
    for row, rating in zip(values, [1, 2, 3, 4, 5] * 6, strict=False):
        row["rating"] = rating
        del row["value"]
    checked = MRI2.validate_reading(values)
    assert [(v, r) for _, v, r in checked[:5]] == [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5)]


@pytest.mark.parametrize(
    ("version", "mutate", "field", "words"),
    [
        (2, lambda v: v[3].update(rating=6), "values[3].rating", "out of range"),
        (2, lambda v: v[3].update(rating=0), "values[3].rating", "1–5"),
        (2, lambda v: v[3].update(rating=2.5), "values[3].rating", "out of range"),
        (2, lambda v: v[3].update(rating="4"), "values[3].rating", "out of range"),
        (2, lambda v: v[3].update(rating=True), "values[3].rating", "out of range"),
        (2, lambda v: v[9].pop("rating"), "values[9].rating", "is required by mri_sij v2"),
        (2, lambda v: v[9].update(rating=None), "values[9].rating", "is required"),
        (2, lambda v: v[2].update(value=1, rating=3), "values[2].value", "contradicts rating 3"),
        (2, lambda v: v[2].update(value=0, rating=5), "values[2].value", "contradicts rating 5"),
        (1, lambda v: v[4].update(rating=4), "values[4].rating", "asks for no rating"),
    ],
)
def test_a_rating_that_does_not_fit_is_a_400_naming_the_field(
    world, client_for, version, mutate, field, words
):
    world.project.scheme = scheme("mri_sij", version)
    world.project.save()
    values = full_values(world.project.scheme.parsed)
    mutate(values)
    response = client_for(world.reader).post(
        f"/api/assignments/{world.assignment.key}/reading/", {"values": values}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert not Reading.objects.exists()


def test_an_ordinal_grade_takes_no_rating():
    values = full_values(CT)
    values[0]["rating"] = 3
    with pytest.raises(SchemeError) as err:
        CT.validate_reading(values)
    assert err.value.field == "values[0].rating"
    assert "its own rating" in err.value.message


def test_a_reference_standard_takes_no_rating():
    values = full_values(MRI2)
    with pytest.raises(SchemeError) as err:
        MRI2.validate_values(values)
    assert err.value.field == "values[0].rating"
    MRI2.validate_values([{k: v for k, v in row.items() if k != "rating"} for row in values])


def test_ratings_are_stored_and_returned_with_the_reading(world, client_for):
    world.project.scheme = scheme("mri_sij", 2)
    world.project.save()
    values = full_values(world.project.scheme.parsed)
    values[0].update(value=1, rating=5)
    values[1].update(value=0, rating=3)
    client = client_for(world.reader)
    form = client.get(f"/api/assignments/{world.assignment.key}/").json()["scheme"]["form"]
    assert form[0]["rating"]["min"] == 1 and form[0]["rating"]["present_from"] == 4
    assert form[0]["rating"]["labels"]["5"] == "definitely present"
    response = client.post(
        f"/api/assignments/{world.assignment.key}/reading/", {"values": values}, format="json"
    )
    assert response.status_code == 201, response.json()
    returned = response.json()["values"]
    assert returned[0] == {"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 1, "rating": 5}
    assert returned[1]["rating"] == 3 and returned[1]["value"] == 0
    stored = ReadingValue.objects.filter(reading__assignment=world.assignment)
    assert stored.filter(rating__isnull=True).count() == 0
    assert sorted(set(stored.values_list("rating", flat=True))) == [1, 3, 5]


def test_a_probability_scheme_takes_0_to_100_and_calls_present_from_50(db, tmp_path):
    path = tmp_path / "probe_sij.v1.yaml"
    path.write_text(PROBABILITY_SCHEME)
    (row,) = schemes_load([path])
    parsed = row.parsed
    bme = parsed.form_items[0]
    assert bme.rating is not None and (bme.rating.kind, bme.rating.low, bme.rating.high) == (
        "probability",
        0,
        100,
    )
    assert parsed.form_items[1].rating is None
    values = [
        {"joint": "left", "region": "joint", "lesion": "bme", "rating": 49},
        {"joint": "left", "region": "joint", "lesion": "sclerosis", "value": 1},
        {"joint": "right", "region": "joint", "lesion": "bme", "value": 1, "rating": 50},
        {"joint": "right", "region": "joint", "lesion": "sclerosis", "value": 0},
    ]
    assert [(v, r) for _, v, r in parsed.validate_reading(values)] == [(0, 49), (1, None), (1, 50), (0, None)]
    values[0]["rating"] = 101
    with pytest.raises(SchemeError) as err:
        parsed.validate_reading(values)
    assert err.value.field == "values[0].rating" and "0–100" in err.value.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("rating: probability}\n", "rating: certainty}\n"), "lesions.bme.rating"),
        (("present_from: 50", "present_from: 0"), "rating_scales.probability.present_from"),
        (("kind: probability", "kind: stars"), "rating_scales.probability.kind"),
        (
            (
                "sclerosis: {unit: joint, value: binary}",
                "sclerosis: {unit: joint, value: ordinal, levels: [0, 1, 2], rating: probability}",
            ),
            "lesions.sclerosis.rating",
        ),
    ],
)
def test_a_broken_rating_definition_fails_at_load_time(tmp_path, change, field):
    path = tmp_path / "probe_sij.v1.yaml"
    path.write_text(PROBABILITY_SCHEME.replace(*change))
    with pytest.raises(SchemeError) as err:
        scheme_load_file(path)
    assert err.value.field == f"probe_sij.v1.yaml:{field}"
