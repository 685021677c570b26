"""The vocabulary is the grading schemes' (labeling/schemes/*.yaml), in the order the trained models use."""

from __future__ import annotations

import copy

from ml.vocab import (
    GROUPINGS,
    JOINTS,
    MODEL_INPUTS,
    MRI,
    OUTPUT_NAMES,
    QUADRANT_LESIONS,
    Vocabulary,
    grouping_class,
    scheme_definition,
)


def test_the_lesion_outputs_keep_the_order_trained_checkpoints_were_written_in() -> None:
    quadrants = ("iliac_upper", "iliac_lower", "sacral_upper", "sacral_lower")
    expected = [f"{lesion}/{q}" for lesion in ("bme", "erosion", "fat") for q in quadrants]
    assert list(OUTPUT_NAMES) == [*expected, "sclerosis/joint", "ankylosis/joint"]
    assert JOINTS == ("left", "right") and QUADRANT_LESIONS == ("bme", "fat", "erosion")  # the scheme's order


def test_names_come_from_the_scheme_data() -> None:
    definition = copy.deepcopy(scheme_definition("mri_sij"))
    definition["quadrants"].append({"id": "sacral_middle", "side": "sacral", "half": "middle"})
    assert Vocabulary.from_definition(definition).quadrants[-1] == "sacral_middle"
    assert len(Vocabulary.from_definition(definition).outputs) == 3 * 5 + 2
    assert Vocabulary.from_definition(scheme_definition("mri_sij")) == MRI
    ct = scheme_definition("ct_sij")
    assert {name: set(classes) for name, classes in GROUPINGS.items()} == {
        name: set(classes) for name, classes in ct["groupings"].items()
    }
    assert grouping_class("zhang_2023_three_class", 3) == "class2"


def test_each_model_kind_names_its_modality_and_series() -> None:
    assert MODEL_INPUTS == {
        "contour": ("MR", ("T1",)),
        "lesions": ("MR", ("T1", "STIR")),
        "ctgrade": ("CT", ()),
    }
