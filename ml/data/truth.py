"""Ground-truth sidecar records of phantom studies (SPEC §6.7): dataclasses, JSON I-O and derived scores.

One ``truth.json`` sits in each study folder. Points are given twice: ``points_mm`` (N, 3) patient LPS mm and
``points_px`` (N, 2) in-plane pixel ``(col, row)`` of slice ``slice_index`` (0-based along the slice normal,
= InstanceNumber - 1), both ordered start (superior) -> end (inferior).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.data.geometry import FloatArray, SliceGeometry
from ml.vocab import HALVES, JOINT_LESIONS, JOINTS, QUADRANT_LESIONS, QUADRANTS


@dataclass(frozen=True)
class SeriesRef:
    """One written series: its UIDs in slice order (index 0 = InstanceNumber 1) and its folder (study-relative)."""

    description: str
    modality: str
    series_instance_uid: str
    sop_instance_uids: list[str]
    folder: str


@dataclass(frozen=True)
class SliceJointTruth:
    """Contour and labels of one joint on one MRI slice.

    ``quadrants[q]`` holds 0/1 for ``bme``, ``bme_intense``, ``bme_deep``, ``fat``, ``erosion``;
    ``halves[h]`` 0/1 for ``backfill`` and ``ankylosis`` (SSS scores both per half); ``bme_fraction[q]`` the share of the quadrant's subchondral marrow (within
    20 mm of the cortex) covered by BME, for Berlin grading; ``height_mm`` is the curve's extent along the image's vertical axis;
    ``quadrant_rule`` applies SPEC §2.2 to that height.
    """

    slice_index: int
    joint: str
    points_mm: list[list[float]]
    points_px: list[list[float]]
    start_mm: list[float]
    end_mm: list[float]
    start_px: list[float]
    end_px: list[float]
    length_mm: float
    height_mm: float
    width_mm: float
    quadrant_rule: str
    quadrants: dict[str, dict[str, int]]
    halves: dict[str, dict[str, int]]
    sclerosis: int
    ankylosis: int
    bme_fraction: dict[str, float]

    def polyline_px(self) -> FloatArray:
        """Polyline (N, 2) as pixel (col, row)."""
        return np.asarray(self.points_px, float)

    def polyline_mm(self) -> FloatArray:
        """Polyline (N, 3) in patient LPS mm."""
        return np.asarray(self.points_mm, float)


@dataclass(frozen=True)
class MriJointTruth:
    """Scan-level truth of one joint: the 14 paper-(a) outputs plus SSS backfill and derived scores.

    ``outputs[lesion][region]`` is 0/1, region = quadrant id for bme/fat/erosion and ``"joint"`` for
    sclerosis/ankylosis. ``scores`` holds SPARCC inflammation and SSS sub-scores of this joint, each the
    maximum over windows of consecutive slices (SPARCC 6, SSS 5; the slice anchoring is [unverified]), and
    the Berlin BME score (0-12, see :func:`berlin_grade`).
    """

    joint: str
    outputs: dict[str, dict[str, int]]
    backfill: dict[str, int]
    scores: dict[str, int]


@dataclass(frozen=True)
class StudyTruth:
    """What the truth of every phantom study holds: which generator wrote it (kind, seed, parameters), its DICOM
    identity, its series and the geometry of its slices. ``MriTruth`` and ``CtTruth`` add their findings."""

    kind: str
    study_id: str
    generator: dict[str, str]
    seed: int
    index: int
    parameters: dict[str, Any]
    patient_id: str
    study_instance_uid: str
    frame_of_reference_uid: str
    series: dict[str, SeriesRef]
    geometry: dict[str, Any]

    def slice_geometry(self) -> SliceGeometry:
        """The geometry of the study's slices (T1 and STIR share it; the CT series)."""
        return SliceGeometry.from_dict(self.geometry)

    def values(self) -> list[dict[str, Any]]:
        """The truth values in the reading-payload format ({joint, region, lesion, value})."""
        raise NotImplementedError


@dataclass(frozen=True)
class MriTruth(StudyTruth):
    """Truth of one MRI phantom study (T1 + STIR, shared geometry)."""

    slices: list[SliceJointTruth]
    joints: dict[str, MriJointTruth]
    lesions: list[dict[str, Any]] = field(default_factory=list)

    def contour(self, joint: str, slice_index: int) -> SliceJointTruth:
        """Return the record of ``joint`` on ``slice_index``; raises KeyError if absent."""
        for item in self.slices:
            if item.joint == joint and item.slice_index == slice_index:
                return item
        raise KeyError((joint, slice_index))

    def values(self) -> list[dict[str, Any]]:
        """The 28 truth values in the reading-payload format ({joint, region, lesion, value})."""
        return [
            {"joint": j, "region": region, "lesion": lesion, "value": int(value)}
            for j in JOINTS
            for lesion, by_region in self.joints[j].outputs.items()
            for region, value in by_region.items()
        ]


@dataclass(frozen=True)
class CtJointTruth:
    """mNY grade of one CT joint and the features drawn for it (widths in mm, counts)."""

    joint: str
    mny_grade: int
    features: dict[str, Any]


@dataclass(frozen=True)
class CtTruth(StudyTruth):
    """Truth of one CT phantom study, with its pelvis-bone SEG.

    ``groupings[name][joint]`` is the class name of that joint's grade in each SPEC §2.4 grouping;
    ``segments`` maps SEG segment numbers to labels.
    """

    rescale_slope: float
    rescale_intercept: float
    joints: dict[str, CtJointTruth]
    total_score: int
    mny_positive: bool
    groupings: dict[str, dict[str, str]]
    segments: dict[str, str]

    def values(self) -> list[dict[str, Any]]:
        """Truth grades in the reading-payload format."""
        return [
            {"joint": j, "region": "joint", "lesion": "mny_grade", "value": self.joints[j].mny_grade}
            for j in JOINTS
        ]


Truth = MriTruth | CtTruth


def _window_max(per_slice: list[int], width: int) -> int:
    if not per_slice:
        return 0
    width = min(width, len(per_slice))
    return max(sum(per_slice[i : i + width]) for i in range(len(per_slice) - width + 1))


def berlin_grade(slices: list[SliceJointTruth], quadrant: str) -> int:
    """Berlin BME grade 0-3 of one quadrant: mean BME share over the slices where the quadrant is scored."""
    scored = [
        s
        for s in slices
        if s.quadrant_rule == "upper_and_lower"
        or (s.quadrant_rule == "upper_quadrants_only" and quadrant.endswith("upper"))
    ]
    if not any(s.quadrants[quadrant]["bme"] for s in slices):
        return 0
    share = float(np.mean([s.bme_fraction[quadrant] for s in scored])) if scored else 0.0
    return 1 if share < 1 / 3 else 2 if share <= 2 / 3 else 3


def joint_summary(joint: str, slices: list[SliceJointTruth]) -> MriJointTruth:
    """Aggregate one joint's slice records (sorted by slice) into its scan-level truth (any over slices)."""
    mine = sorted((s for s in slices if s.joint == joint), key=lambda s: s.slice_index)
    outputs: dict[str, dict[str, int]] = {
        lesion: {q: int(any(s.quadrants[q][lesion] for s in mine)) for q in QUADRANTS}
        for lesion in QUADRANT_LESIONS
    }
    for lesion in JOINT_LESIONS:
        outputs[lesion] = {"joint": int(any(getattr(s, lesion) for s in mine))}
    sparcc = [
        sum(s.quadrants[q]["bme"] for q in QUADRANTS)
        + int(any(s.quadrants[q]["bme_intense"] for q in QUADRANTS))
        + int(any(s.quadrants[q]["bme_deep"] for q in QUADRANTS))
        for s in mine
    ]
    scores = {
        "sparcc_inflammation": _window_max(sparcc, 6),
        "sss_fat": _window_max([sum(s.quadrants[q]["fat"] for q in QUADRANTS) for s in mine], 5),
        "sss_erosion": _window_max([sum(s.quadrants[q]["erosion"] for q in QUADRANTS) for s in mine], 5),
        "sss_backfill": _window_max([sum(s.halves[h]["backfill"] for h in HALVES) for s in mine], 5),
        "sss_ankylosis": _window_max([sum(s.halves[h]["ankylosis"] for h in HALVES) for s in mine], 5),
        "berlin_bme": sum(berlin_grade(mine, q) for q in QUADRANTS),
    }
    backfill = {h: int(any(s.halves[h]["backfill"] for s in mine)) for h in HALVES}
    return MriJointTruth(joint=joint, outputs=outputs, backfill=backfill, scores=scores)


def save_truth(truth: Truth, path: Path) -> None:
    """Write a truth record as indented JSON."""
    path.write_text(json.dumps(asdict(truth), indent=1))


def _series(data: dict[str, Any]) -> dict[str, SeriesRef]:
    return {key: SeriesRef(**value) for key, value in data.items()}


def truth_from_dict(data: dict[str, Any]) -> Truth:
    """Rebuild a truth dataclass from its JSON dict; raises ValueError on an unknown ``kind``."""
    data = dict(data)
    data["series"] = _series(data["series"])
    if data["kind"] == "mri":
        data["slices"] = [SliceJointTruth(**s) for s in data["slices"]]
        data["joints"] = {j: MriJointTruth(**v) for j, v in data["joints"].items()}
        return MriTruth(**data)
    if data["kind"] == "ct":
        data["joints"] = {j: CtJointTruth(**v) for j, v in data["joints"].items()}
        return CtTruth(**data)
    raise ValueError(f"unknown truth kind {data['kind']!r}")


def load_truth(path: str | Path) -> Truth:
    """Load a ``truth.json`` (or a study folder containing one) into :class:`MriTruth` or :class:`CtTruth`."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    return truth_from_dict(json.loads(path.read_text()))
