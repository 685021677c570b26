"""The generator's own names; the scheme's names (joints, quadrants, lesions, grades, groupings) come from
``ml.vocab``, which reads the grading schemes, so what the phantoms draw is labelled as the product reads it.
"""

from __future__ import annotations

from typing import Final

from ml.vocab import (
    GROUPINGS,
    HALVES,
    JOINT_LESIONS,
    JOINTS,
    MNY_GRADES,
    MRI_SEQUENCES,
    QUADRANT_LESIONS,
    QUADRANTS,
    grouping_class,
    mny_positive,
    quadrant_rule,
)

GENERATOR_NAME: Final = "concord-phantoms"
GENERATOR_VERSION: Final = "0.1.0"
CT_SERIES_DESCRIPTION: Final = "CT SIJ"

__all__ = [
    "CT_SERIES_DESCRIPTION",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "GROUPINGS",
    "HALVES",
    "JOINTS",
    "JOINT_LESIONS",
    "MNY_GRADES",
    "MRI_SEQUENCES",
    "QUADRANTS",
    "QUADRANT_LESIONS",
    "grouping_class",
    "mny_positive",
    "quadrant_rule",
]
