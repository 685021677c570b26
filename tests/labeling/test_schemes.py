import pytest

from labeling.exceptions import Conflict
from labeling.models import GradingScheme
from labeling.schemes import SCHEME_DIR, SchemeError, schemes_from_files
from labeling.services.schemes import schemes_load
from tests.labeling.factories import full_values

SCHEMES = {(s.name, s.version): s for s in schemes_from_files()}
MRI, CT = SCHEMES["mri_sij", 1], SCHEMES["ct_sij", 1]


def test_mri_form_has_the_14_paper_outputs_per_joint():
    per_joint = [i for i in MRI.form_items if i.joint == "left"]
    assert len(per_joint) == 14
    assert len(MRI.form_items) == 28
    quadrant = {(i.lesion, i.region) for i in per_joint if i.region != "joint"}
    assert {lesion for lesion, _ in quadrant} == {"bme", "fat", "erosion"}
    assert len(quadrant) == 12
    assert {i.lesion for i in per_joint if i.region == "joint"} == {"sclerosis", "ankylosis"}
    assert all(i.values == (0, 1) for i in per_joint)
    assert MRI.sequences == ["T1", "STIR"]


def test_ct_form_is_one_mny_grade_per_joint_with_its_groupings():
    assert [(i.joint, i.lesion, i.values) for i in CT.form_items] == [
        ("left", "mny_grade", (0, 1, 2, 3, 4)),
        ("right", "mny_grade", (0, 1, 2, 3, 4)),
    ]
    assert CT.groupings["du_2026_three_class"] == {
        "normal_or_suspicious": [0, 1],
        "definite_sacroiliitis": [2, 3],
        "ankylosis": [4],
    }
    assert set(CT.groupings) == {"du_2026_three_class", "zhang_2023_three_class", "binary_definite"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda v: v[3].update(region="iliac_middle"), "values[3].region"),
        (lambda v: v[0].update(joint="centre"), "values[0].joint"),
        (lambda v: v[5].update(value=2), "values[5].value"),
        (lambda v: v[5].update(value=True), "values[5].value"),
        (lambda v: v[2].update(lesion="backfill"), "values[2].lesion"),
        (lambda v: v[1].update(colour="red"), "values[1].colour"),
        (lambda v: v.pop(), "values"),
        (lambda v: v.append(dict(v[0])), "values[28]"),
    ],
)
def test_a_reading_that_does_not_fit_names_the_field(mutate, field):
    values = full_values(MRI)
    mutate(values)
    with pytest.raises(SchemeError) as err:
        MRI.validate_values(values)
    assert err.value.field == field


def test_validation_returns_every_item_in_form_order():
    checked = MRI.validate_values(list(reversed(full_values(MRI, 1))))
    assert [item for item, _ in checked] == MRI.form_items
    assert {value for _, value in checked} == {1}


def test_loading_is_idempotent_and_versions_are_immutable(db, tmp_path):
    first = schemes_load()
    assert schemes_load() == first
    assert GradingScheme.objects.count() == len(SCHEMES) == 3
    changed = tmp_path / "ct.yaml"
    text = (SCHEME_DIR / "ct_sij.v1.yaml").read_text()
    changed.write_text(text.replace("4: total ankylosis", "4: fused"))
    with pytest.raises(Conflict, match="immutable"):
        schemes_load([changed])
