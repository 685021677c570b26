"""The one vocabulary of ml (Django-free): joints, quadrants, lesions, MRI sequences, mNY grades and their
groupings, and the order of the lesion model's 14 outputs, all read from the grading schemes.

The source is the scheme data, ``labeling/schemes/*.yaml`` (read here as files, so nothing of the web app
is imported); a dataset snapshot carries its project's scheme definition, and ``Vocabulary.from_definition``
reads the same names from it. The phantom generator imports these names; nothing here imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCHEME_DIR = Path(__file__).resolve().parents[1] / "labeling" / "schemes"
MRI_SCHEME, CT_SCHEME = "mri_sij", "ct_sij"


@cache
def scheme_definition(name: str, version: int = 1) -> dict[str, Any]:
    """The scheme document ``<name>.v<version>.yaml`` as a dict (FileNotFoundError when absent)."""
    definition: dict[str, Any] = yaml.safe_load((SCHEME_DIR / f"{name}.v{version}.yaml").read_text())
    return definition


@dataclass(frozen=True)
class Vocabulary:
    """The names of one scheme; fields a scheme does not have are empty."""

    scheme: str
    modality: str
    joints: tuple[str, ...]
    quadrants: tuple[str, ...] = ()
    halves: tuple[str, ...] = ()
    lesions: tuple[str, ...] = ()  # the scheme's order
    sequences: tuple[str, ...] = ()
    grades: tuple[int, ...] = ()
    groupings: Mapping[str, Mapping[str, tuple[int, ...]]] | None = None
    #: lesion -> unit (quadrant | joint | half)
    units: Mapping[str, str] | None = None
    #: the quadrant-level lesions of the lesion model, in output order (paper (a), Fig. 9)
    output_quadrant_lesions: tuple[str, ...] = ()

    @classmethod
    def from_definition(cls, d: Mapping[str, Any]) -> Vocabulary:
        lesions = d.get("lesions", {})
        grades = next((tuple(v["levels"]) for v in lesions.values() if v.get("value") == "ordinal"), ())
        return cls(
            scheme=str(d["scheme"]),
            modality=str(d["modality"]),
            joints=tuple(d["joints"]),
            quadrants=tuple(q["id"] for q in d.get("quadrants", ())),
            halves=tuple(d.get("halves", ())),
            lesions=tuple(lesions),
            sequences=tuple(d.get("acquisition", {}).get("sequences", {})),
            grades=grades,
            groupings={
                name: {label: tuple(g) for label, g in classes.items()}
                for name, classes in d.get("groupings", {}).items()
            },
            units={name: str(v["unit"]) for name, v in lesions.items()},
            output_quadrant_lesions=tuple(d.get("paper_a_outputs_per_joint", {}).get("quadrant_level", ())),
        )

    def lesions_of(self, unit: str) -> tuple[str, ...]:
        """The scheme's lesions scored per ``unit`` (quadrant, joint, half), in scheme order."""
        return tuple(name for name in self.lesions if (self.units or {}).get(name) == unit)

    @property
    def outputs(self) -> tuple[tuple[str, str], ...]:
        """The lesion model's outputs per joint as (lesion, region): quadrant-level lesions in output order x
        quadrants, then the joint-level lesions (scheme order) with region ``"joint"``."""
        return tuple(
            [(lesion, q) for lesion in self.output_quadrant_lesions for q in self.quadrants]
            + [(lesion, "joint") for lesion in self.lesions_of("joint")]
        )


MRI = Vocabulary.from_definition(scheme_definition(MRI_SCHEME))
CT = Vocabulary.from_definition(scheme_definition(CT_SCHEME))

JOINTS = MRI.joints
QUADRANTS = MRI.quadrants
HALVES = MRI.halves
QUADRANT_LESIONS = MRI.lesions_of("quadrant")  # scheme order: bme, fat, erosion
JOINT_LESIONS = MRI.lesions_of("joint")
MRI_SEQUENCES = MRI.sequences
#: The lesion model's 14 outputs per joint as (lesion, region), in network output order.
OUTPUTS = MRI.outputs
OUTPUT_NAMES = tuple(f"{lesion}/{region}" for lesion, region in OUTPUTS)
MNY_GRADES = CT.grades
GROUPINGS: Mapping[str, Mapping[str, tuple[int, ...]]] = CT.groupings or {}

#: Which scan each model kind reads: the project modality it needs and the series it trains on and
#: pre-reads (empty: every series of the study, e.g. the CT and its pelvis SEG).
MODEL_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "contour": (MRI.modality, ("T1",)),
    "lesions": (MRI.modality, MRI.sequences),
    "ctgrade": (CT.modality, ()),
}


def grouping_class(grouping: str, grade: int) -> str:
    """An mNY grade's class name in one of the CT scheme's groupings; KeyError if unknown."""
    for name, grades in GROUPINGS[grouping].items():
        if grade in grades:
            return name
    raise KeyError(f"grade {grade} not in grouping {grouping}")


def mny_positive(left: int, right: int) -> bool:
    """The CT scheme's ``mny_radiological_positive``: grade >= 2 bilaterally or >= 3 unilaterally."""
    return (left >= 2 and right >= 2) or left >= 3 or right >= 3


def quadrant_rule(height_mm: float) -> str:
    """The MRI scheme's ``quadrant_rule`` (SPARCC) for a joint height in mm."""
    if height_mm < 10.0:
        return "not_scored"
    if height_mm < 30.0:
        return "upper_quadrants_only"
    return "upper_and_lower"
