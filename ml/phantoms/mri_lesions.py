"""Lesion plans and lesion painting of the MRI phantom (SPEC §6.3 ``lesions``).

A plan is sampled once per scan (which lesion, joint, quadrant, slices, size, signal); painting draws it on
each slice in curve coordinates (:class:`~ml.phantoms.mri_anatomy.JointFrame`) and reports the labels that
are actually visible (at least ``MIN_PIXELS`` changed pixels inside the quadrant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.random import Generator
from scipy.ndimage import binary_erosion

from ml.data.geometry import BoolArray, FloatArray
from ml.phantoms.difficulty import EASY, Difficulty, draw
from ml.phantoms.mri_anatomy import JointFrame
from ml.phantoms.schema import HALVES, JOINTS, QUADRANTS

MIN_PIXELS = 5  # fewer changed pixels than this are not labelled (not reliably visible)
#: Depth below the subchondral cortex that counts as the quadrant for Berlin percentages [design].
BERLIN_DEPTH_MM = 20.0
MID_SLICE_MIN_LENGTH_MM = 32.0


@dataclass(frozen=True)
class LesionSpec:
    """One planned lesion. ``quadrant`` is None for joint-level lesions (sclerosis, ankylosis).

    ``centre_frac`` is the arc-length position (fraction of the joint length), ``half_extent_mm`` the half
    extent along the joint, ``depth_mm`` the extent into the bone below the subchondral cortex. A BME with
    ``contrast`` > 0 has STIR signal marrow x (1 + contrast) instead of ``stir``; ``t1_factor`` is its T1
    darkening. ``spill``: the lesion is painted (and labelled) in the neighbouring quadrant of its side too.
    """

    kind: str
    joint: str
    quadrant: str | None
    slices: tuple[int, ...]
    centre_frac: float
    half_extent_mm: float
    depth_mm: float
    t1: float = 0.0
    stir: float = 0.0
    active: bool = False
    backfill: bool = False
    both_sides: bool = False
    contrast: float = 0.0
    t1_factor: float = 0.6
    spill: bool = False

    def scale(self, k: int) -> float:
        """Size factor on slice ``k``: 1 at the centre of the slice run, 0.75 at its ends."""
        if len(self.slices) < 2:
            return 1.0
        centre = (self.slices[0] + self.slices[-1]) / 2
        return float(1.0 - 0.25 * abs(k - centre) / ((self.slices[-1] - self.slices[0]) / 2))


def _run(rng: Generator, mid: list[int], lo: int, hi: int) -> tuple[int, ...]:
    """Pick ``lo..hi`` consecutive slices inside the mid-slice list."""
    n = min(int(rng.integers(lo, hi + 1)), len(mid))
    start = int(rng.integers(0, len(mid) - n + 1))
    return tuple(mid[start : start + n])


def _centre(rng: Generator, quadrant: str, anywhere: bool) -> float:
    """Arc position of a lesion of ``quadrant``: mid-quadrant, or ``anywhere`` in it, boundaries included."""
    upper = quadrant.endswith("upper")
    if anywhere:
        return float(rng.uniform(0.02, 0.5) if upper else rng.uniform(0.5, 0.98))
    return float(rng.uniform(0.15, 0.35) if upper else rng.uniform(0.65, 0.85))


def _bme_signal(rng: Generator, d: Difficulty) -> tuple[float, float, float]:
    """(stir, contrast, t1_factor) of one BME: absolute STIR U(0.5, 1.0) (easy, and the intense share), or a
    faint contrast over marrow."""
    if d.bme_contrast is None:
        return float(rng.uniform(0.5, 1.0)), 0.0, 0.6
    t1_factor = draw(rng, d.bme_t1_factor)
    if rng.random() < d.bme_intense_share:
        return float(rng.uniform(0.5, 1.0)), 0.0, t1_factor
    return 0.0, draw(rng, d.bme_contrast), t1_factor


def plan_lesions(rng: Generator, lengths_mm: dict[str, FloatArray], d: Difficulty = EASY) -> list[LesionSpec]:
    """Sample the lesions of one scan; ``lengths_mm[joint]`` (S,) are the per-slice joint lengths.

    About 30% of scans are lesion-free; otherwise each joint gets ankylosis (p 0.15), sclerosis (p 0.3), and
    per quadrant erosion (iliac 0.32, sacral 0.08: about 4:1), fat (0.2, 0.5 with an erosion) and BME (0.35,
    0.1 with ankylosis) -- co-occurrence tendencies of SPEC §6.3. Erosions span 2-3 slices, a 3-6 mm cortical
    gap and 3-6 mm below the cortex, 30% backfilled, half of the rest active (bright on STIR). Sizes, BME
    signal and where lesions sit follow the difficulty ``d`` (:mod:`ml.phantoms.difficulty`).
    """
    plan: list[LesionSpec] = []
    if rng.random() < 0.3:
        return plan
    for joint in JOINTS:
        mid = [int(k) for k in np.flatnonzero(lengths_mm[joint] >= MID_SLICE_MIN_LENGTH_MM)]
        if len(mid) < 2:
            continue
        ankylosis = rng.random() < 0.15
        if ankylosis:
            plan.append(
                LesionSpec(
                    "ankylosis",
                    joint,
                    None,
                    _run(rng, mid, 2, 5),
                    float(rng.uniform(0.3, 0.7)),
                    float(rng.uniform(6.0, 14.0)),
                    0.0,
                )
            )
        if rng.random() < (0.5 if ankylosis else 0.3):
            plan.append(
                LesionSpec(
                    "sclerosis",
                    joint,
                    None,
                    _run(rng, mid, 3, 6),
                    float(rng.uniform(0.35, 0.65)),
                    float(rng.uniform(10.0, 18.0)),
                    float(rng.uniform(5.0, 10.0)),
                    t1=0.05,
                    stir=0.05,
                    both_sides=bool(rng.random() < 0.4),
                )
            )
        for quadrant in QUADRANTS:
            eroded = rng.random() < (0.32 if quadrant.startswith("iliac") else 0.08)
            if eroded:
                backfill = bool(rng.random() < 0.3)
                plan.append(
                    LesionSpec(
                        "erosion",
                        joint,
                        quadrant,
                        _run(rng, mid, 2, 3),
                        _centre(rng, quadrant, d.anywhere),
                        draw(rng, d.erosion_half_extent_mm),
                        float(rng.uniform(3.0, 6.0)),
                        t1=0.95 if backfill else 0.2,
                        stir=0.05 if backfill else 0.15,
                        active=bool(not backfill and rng.random() < 0.5),
                        backfill=backfill,
                        spill=d.anywhere,
                    )
                )
            if rng.random() < (0.5 if eroded else 0.2):
                plan.append(
                    LesionSpec(
                        "fat",
                        joint,
                        quadrant,
                        _run(rng, mid, 1, 3),
                        _centre(rng, quadrant, d.anywhere),
                        float(rng.uniform(4.0, 8.0)),
                        float(rng.uniform(2.0, 10.0)),
                        t1=float(rng.uniform(0.9, 1.0)),
                        spill=d.anywhere,
                    )
                )
            if rng.random() < (0.1 if ankylosis else 0.35):
                run, centre = _run(rng, mid, 1, 4), _centre(rng, quadrant, d.anywhere)
                half_extent, depth = draw(rng, d.bme_half_extent_mm), draw(rng, d.bme_depth_mm)
                stir, contrast, t1_factor = _bme_signal(rng, d)
                plan.append(
                    LesionSpec(
                        "bme",
                        joint,
                        quadrant,
                        run,
                        centre,
                        half_extent,
                        depth,
                        stir=stir,
                        contrast=contrast,
                        t1_factor=t1_factor,
                        spill=d.anywhere,
                    )
                )
    return plan


def empty_slice_labels() -> dict[str, Any]:
    """Labels of one joint on one slice with nothing drawn."""
    lesion = {"bme": 0, "bme_intense": 0, "bme_deep": 0, "fat": 0, "erosion": 0}
    return {
        "quadrants": {q: dict(lesion) for q in QUADRANTS},
        "halves": {h: {"backfill": 0, "ankylosis": 0} for h in HALVES},
        "sclerosis": 0,
        "ankylosis": 0,
        "bme_fraction": {q: 0.0 for q in QUADRANTS},
    }


def _along(frame: JointFrame, lesion: LesionSpec, scale: float) -> FloatArray:
    """(h, w) normalised arc offset from the lesion centre (|x| <= 1 inside its extent)."""
    return (frame.a - lesion.centre_frac * frame.length_mm) / (lesion.half_extent_mm * scale)


def paint_lesions(
    frame: JointFrame,
    k: int,
    lesions: list[LesionSpec],
    t1: FloatArray,
    stir: FloatArray,
    marrow: tuple[float, float],
) -> dict[str, Any]:
    """Draw the lesions of ``frame.joint`` on slice ``k`` into ROI views ``t1``/``stir`` (h, w), in place.

    Order: sclerosis, ankylosis, fat, BME, erosion (an erosion cuts through what lies below it). Returns the
    visible labels in the layout of :func:`empty_slice_labels`.
    """
    labels = empty_slice_labels()
    depth = frame.surface_depth
    order = {"sclerosis": 0, "ankylosis": 1, "fat": 2, "bme": 3, "erosion": 4}
    todo = sorted(
        (x for x in lesions if x.joint == frame.joint and k in x.slices), key=lambda x: order[x.kind]
    )
    for lesion in todo:
        s = lesion.scale(k)
        along = _along(frame, lesion, s)
        if lesion.kind == "sclerosis":
            reach = np.where(
                frame.d > 0, lesion.depth_mm, 0.6 * lesion.depth_mm if lesion.both_sides else 0.0
            )
            rounded = along**4 + (np.maximum(depth - frame.cortex_mm, 0) / np.maximum(reach, 1e-6)) ** 4 <= 1
            mask = rounded & (reach > 0) & (depth >= 0) & frame.bone & frame.within
            t1[mask], stir[mask] = lesion.t1, lesion.stir
            labels["sclerosis"] = int(mask.sum() >= MIN_PIXELS)
            continue
        if lesion.kind == "ankylosis":
            mask = (np.abs(along) <= 1) & (depth < frame.cortex_mm) & frame.within
            t1[mask], stir[mask] = marrow
            labels["ankylosis"] = int(mask.sum() >= MIN_PIXELS)
            upper = frame.a < frame.length_mm / 2
            for half, in_half in (("upper", upper), ("lower", ~upper)):
                labels["halves"][half]["ankylosis"] = int((mask & in_half).sum() >= MIN_PIXELS)
            continue
        assert lesion.quadrant is not None
        for name in _reached(lesion):
            _paint_quadrant(frame, lesion, name, s, along, t1, stir, marrow, labels)
    return labels


def _reached(lesion: LesionSpec) -> tuple[str, ...]:
    """The quadrants a quadrant lesion is painted in: its own, and with ``spill`` the other one of its side."""
    assert lesion.quadrant is not None
    if not lesion.spill:
        return (lesion.quadrant,)
    side = lesion.quadrant.split("_")[0]
    return tuple(q for q in QUADRANTS if q.split("_")[0] == side)


def _paint_quadrant(
    frame: JointFrame,
    lesion: LesionSpec,
    name: str,
    s: float,
    along: FloatArray,
    t1: FloatArray,
    stir: FloatArray,
    marrow: tuple[float, float],
    labels: dict[str, Any],
) -> None:
    """Draw the part of a fat, BME or erosion lesion that lies in quadrant ``name`` and label it there."""
    quadrant = frame.quadrant_mask(name)
    marrow_zone = (frame.surface_depth >= frame.cortex_mm) & frame.bone & frame.within
    below = (frame.surface_depth - frame.cortex_mm) / (lesion.depth_mm * s)
    entry = labels["quadrants"][name]
    if lesion.kind == "fat":
        mask = (np.abs(along) <= 1) & (below <= 1) & marrow_zone & quadrant
        t1[mask], stir[mask] = lesion.t1, stir[mask] * 0.3
        entry["fat"] = max(entry["fat"], int(mask.sum() >= MIN_PIXELS))
    elif lesion.kind == "bme":
        mask = (along**2 + below**2 <= 1) & marrow_zone & quadrant
        signal = marrow[1] * (1.0 + lesion.contrast) if lesion.contrast > 0 else lesion.stir
        t1[mask], stir[mask] = t1[mask] * lesion.t1_factor, signal
        if mask.sum() >= MIN_PIXELS:
            entry["bme"] = 1
            entry["bme_intense"] = max(entry["bme_intense"], int(lesion.stir >= 0.9))
            entry["bme_deep"] = max(entry["bme_deep"], int(lesion.depth_mm * s >= 10.0))
            region = quadrant & marrow_zone & (frame.surface_depth <= BERLIN_DEPTH_MM)
            share = float((mask & region).sum() / max(int(region.sum()), 1))
            labels["bme_fraction"][name] = round(labels["bme_fraction"][name] + share, 4)
    else:
        _paint_erosion(frame, lesion, name, s, quadrant, t1, stir, entry, labels)


def _paint_erosion(
    frame: JointFrame,
    lesion: LesionSpec,
    name: str,
    s: float,
    quadrant: BoolArray,
    t1: FloatArray,
    stir: FloatArray,
    entry: dict[str, int],
    labels: dict[str, Any],
) -> None:
    """Cut a cortical defect open to the joint space and fill it (erosion fluid, or backfill with a dark rim)."""
    depth = frame.surface_depth
    side = frame.d > 0 if lesion.quadrant and lesion.quadrant.startswith("iliac") else frame.d < 0
    reach = frame.cortex_mm + lesion.depth_mm * s
    along = (frame.a - lesion.centre_frac * frame.length_mm) / lesion.half_extent_mm
    cavity = (
        (along**2 + (np.maximum(depth, 0) / reach) ** 2 <= 1)
        & (depth >= 0)
        & side
        & frame.within
        & frame.bone
    )
    cavity &= quadrant
    t1[cavity] = lesion.t1
    stir[cavity] = 0.7 if lesion.active else lesion.stir
    if lesion.backfill:
        rim = cavity & ~binary_erosion(cavity) & (depth > 0.5)
        t1[rim], stir[rim] = 0.05, 0.03
    if cavity.sum() >= MIN_PIXELS:
        entry["erosion"] = 1
        if lesion.backfill:
            labels["halves"][name.split("_")[1]]["backfill"] = 1
