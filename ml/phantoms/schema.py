"""Names shared by the generators, the truth records and the simulated readers.

They mirror the grading schemes of SPEC §2.2 (``mri_sij`` v1) and §2.4 (``ct_sij`` v1). The platform keeps the
schemes as versioned data; the phantom generator only needs this fixed copy to label what it draws.
"""

from __future__ import annotations

from typing import Final

GENERATOR_NAME: Final = "concord-phantoms"
GENERATOR_VERSION: Final = "0.1.0"

JOINTS: Final = ("left", "right")
QUADRANTS: Final = ("iliac_upper", "iliac_lower", "sacral_upper", "sacral_lower")
HALVES: Final = ("upper", "lower")
QUADRANT_LESIONS: Final = ("bme", "fat", "erosion")
JOINT_LESIONS: Final = ("sclerosis", "ankylosis")
MRI_SEQUENCES: Final = ("T1", "STIR")
CT_SERIES_DESCRIPTION: Final = "CT SIJ"
MNY_GRADES: Final = (0, 1, 2, 3, 4)

#: SPEC §2.4 groupings: name -> {class name: grades}.
GROUPINGS: Final[dict[str, dict[str, tuple[int, ...]]]] = {
    "du_2026_three_class": {
        "normal_or_suspicious": (0, 1),
        "definite_sacroiliitis": (2, 3),
        "ankylosis": (4,),
    },
    "zhang_2023_three_class": {"class0": (0, 1), "class1": (2,), "class2": (3, 4)},
    "binary_definite": {"negative": (0, 1), "positive": (2, 3, 4)},
}


def quadrant_side(quadrant: str) -> str:
    """Return ``"iliac"`` or ``"sacral"`` for a quadrant id."""
    return quadrant.split("_")[0]


def quadrant_half(quadrant: str) -> str:
    """Return ``"upper"`` or ``"lower"`` for a quadrant id."""
    return quadrant.split("_")[1]


def paper_a_output_names() -> list[tuple[str, str]]:
    """List the 14 paper-(a) outputs of one joint as (lesion, region) pairs, region ``"joint"`` for joint lesions."""
    names = [(lesion, quadrant) for lesion in QUADRANT_LESIONS for quadrant in QUADRANTS]
    return names + [(lesion, "joint") for lesion in JOINT_LESIONS]


def grouping_class(grouping: str, grade: int) -> str:
    """Map an mNY grade (0-4) to its class name in one SPEC §2.4 grouping; raises KeyError if unknown."""
    for name, grades in GROUPINGS[grouping].items():
        if grade in grades:
            return name
    raise KeyError(f"grade {grade} not in grouping {grouping}")


def mny_positive(left: int, right: int) -> bool:
    """Apply the mNY radiological criterion: grade >= 2 bilaterally or >= 3 unilaterally (SPEC §2.4)."""
    return (left >= 2 and right >= 2) or left >= 3 or right >= 3


def quadrant_rule(height_mm: float) -> str:
    """Return the SPARCC quadrant rule of SPEC §2.2 for a joint height in mm."""
    if height_mm < 10.0:
        return "not_scored"
    if height_mm < 30.0:
        return "upper_quadrants_only"
    return "upper_and_lower"
