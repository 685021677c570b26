"""Simulated readers (SPEC §6.5) producing readings in the product API's payload format.

Payload per (reader, session, study)::

    {"values": [{"joint", "region", "lesion", "value"}, ...],
     "contours": [{"joint", "series_uid", "sop_instance_uid", "slice_index", "points_mm": [[x, y, z], ...]}]}

MRI readings hold the 14 paper-(a) values per joint and contours on the T1 series; CT readings hold one
``mny_grade`` per joint. Binary readers flip labels by sensitivity/specificity; ordinal readers grade with
P(y = l | z = j) ∝ exp(-(l - j - b)^2 / (2 sigma^2)) (SPEC §4.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.random import Generator

from ml.data.geometry import FloatArray, resample_polyline, unit_tangents
from ml.data.truth import CtTruth, MriTruth, SliceJointTruth, Truth
from ml.phantoms.mri_anatomy import smooth_series
from ml.phantoms.schema import JOINTS, MNY_GRADES

CONTOUR_POINTS = 24


@dataclass(frozen=True)
class ReaderProfile:
    """Generating parameters of one simulated reader.

    ``kind``: ``"normal"``, ``"spammer"`` (answers independently of the truth) or ``"adversarial"``
    (anti-correlated). ``coverage`` is the share of studies read; ``drift_sd`` the per-session jitter of
    sensitivity/specificity (and of the bias, in grades); contour offset/noise in mm.
    """

    reader_id: str
    kind: str
    sensitivity: float
    specificity: float
    bias: int
    spread: float
    coverage: float
    sessions: int
    drift_sd: float
    contour_offset_mm: float
    contour_noise_mm: float
    spam_rate: float = 0.5


def sample_readers(
    rng: Generator, n: int, *, sessions: int | None = None, spammer: bool = False, adversarial: bool = False
) -> list[ReaderProfile]:
    """Draw ``n`` normal readers (plus an optional spammer and adversarial reader) per SPEC §6.5."""
    readers = [
        ReaderProfile(
            reader_id=f"R{i + 1}",
            kind="normal",
            sensitivity=float(rng.uniform(0.6, 0.95)),
            specificity=float(rng.uniform(0.8, 0.98)),
            bias=int(rng.integers(-1, 2)),
            spread=float(rng.uniform(0.3, 1.0)),
            coverage=float(rng.uniform(0.3, 1.0)),
            sessions=sessions or int(rng.integers(1, 4)),
            drift_sd=float(rng.uniform(0.0, 0.03)),
            contour_offset_mm=float(rng.normal(0.0, 0.5)),
            contour_noise_mm=float(rng.uniform(0.2, 0.8)),
        )
        for i in range(n)
    ]
    extra = [("spammer", 0.5, 0.5)] * spammer + [("adversarial", 0.1, 0.1)] * adversarial
    for kind, sens, spec in extra:
        readers.append(
            ReaderProfile(
                f"R{len(readers) + 1}",
                kind,
                sens,
                spec,
                0,
                1.0,
                1.0,
                sessions or 1,
                0.0,
                float(rng.normal(0.0, 3.0)),
                2.0,
            )
        )
    return readers


class ContourStyle(Protocol):
    """What :func:`reader_contour` reads of a reader: its constant line offset and its noise, mm."""

    @property
    def contour_offset_mm(self) -> float: ...

    @property
    def contour_noise_mm(self) -> float: ...


def ordinal_confusion(bias: float, spread: float, levels: int = len(MNY_GRADES)) -> FloatArray:
    """Row-stochastic (levels, levels) matrix P(y = l | z = j) of the two-parameter ordinal reader model."""
    j, lv = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    logits = -((lv - j - bias) ** 2) / (2 * spread**2)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: FloatArray = p / p.sum(axis=1, keepdims=True)
    return out


def read_binary(truth: np.ndarray, sensitivity: float, specificity: float, rng: Generator) -> np.ndarray:
    """Binary readings (n,) int of truth labels (n,) 0/1: P(1 | 1) = sensitivity, P(0 | 0) = specificity."""
    u = rng.random(truth.shape)
    return np.where(truth == 1, u < sensitivity, u >= specificity).astype(int)


def read_ordinal(truth: np.ndarray, bias: float, spread: float, rng: Generator) -> np.ndarray:
    """Ordinal readings (n,) of grades (n,) in 0..4 under :func:`ordinal_confusion`."""
    cdf = np.cumsum(ordinal_confusion(bias, spread), axis=1)[truth]
    out: np.ndarray = np.minimum((rng.random(truth.shape)[:, None] > cdf).sum(axis=1), len(MNY_GRADES) - 1)
    return out


def session_parameters(profile: ReaderProfile, rng: Generator) -> list[dict[str, float]]:
    """Per-session (sensitivity, specificity, bias) with drift; session 1 uses the profile values."""
    out = []
    for s in range(profile.sessions):
        jitter = rng.normal(0.0, profile.drift_sd, 3) if s else np.zeros(3)
        out.append(
            {
                "sensitivity": float(np.clip(profile.sensitivity + jitter[0], 0.01, 0.99)),
                "specificity": float(np.clip(profile.specificity + jitter[1], 0.01, 0.99)),
                "bias": float(profile.bias + 10 * jitter[2]),
            }
        )
    return out


def reader_contour(
    record: SliceJointTruth, truth: MriTruth, profile: ContourStyle, rng: Generator
) -> dict[str, Any]:
    """Perturb a truth polyline: constant normal offset, smooth noise, end jitter; return a payload contour."""
    geometry = truth.slice_geometry()
    px = record.polyline_px()
    mm_per_px = geometry.pixel_mm
    normal = unit_tangents(px) @ np.array([[0.0, -1.0], [1.0, 0.0]])
    noise = smooth_series(rng, len(px), abs(rng.normal(0.0, profile.contour_noise_mm)) + 1e-6)
    moved = px + normal * ((profile.contour_offset_mm + noise) / mm_per_px)[:, None]
    start, end = (rng.normal(0.0, profile.contour_noise_mm, 2) / mm_per_px).tolist()
    tangent = unit_tangents(moved)
    moved = np.vstack([moved[0] - tangent[0] * start, moved[1:-1], moved[-1] + tangent[-1] * end])
    points = geometry.px_to_patient(record.slice_index, resample_polyline(moved, CONTOUR_POINTS))
    series = truth.series["T1"]
    return {
        "joint": record.joint,
        "series_uid": series.series_instance_uid,
        "sop_instance_uid": series.sop_instance_uids[record.slice_index],
        "slice_index": record.slice_index,
        "points_mm": np.round(points, 3).tolist(),
    }


def read_study(
    truth: Truth, profile: ReaderProfile, params: dict[str, float], rng: Generator
) -> dict[str, Any]:
    """One reading payload of ``truth`` by ``profile`` with the session ``params``."""
    items = truth.values()
    true = np.array([v["value"] for v in items])
    if isinstance(truth, CtTruth):
        if profile.kind == "spammer":
            given = rng.integers(0, len(MNY_GRADES), len(true))
        elif profile.kind == "adversarial":
            given = len(MNY_GRADES) - 1 - true
        else:
            given = read_ordinal(true, params["bias"], profile.spread, rng)
        return {"values": [v | {"value": int(g)} for v, g in zip(items, given, strict=True)], "contours": []}
    if profile.kind == "spammer":
        given = (rng.random(len(true)) < profile.spam_rate).astype(int)
    else:
        given = read_binary(true, params["sensitivity"], params["specificity"], rng)
    contours = [
        reader_contour(r, truth, profile, rng)
        for r in truth.slices
        if r.quadrant_rule != "not_scored" and r.joint in JOINTS
    ]
    return {
        "values": [v | {"value": int(g)} for v, g in zip(items, given, strict=True)],
        "contours": contours,
    }


def simulate_readings(
    truths: list[Truth], readers: list[ReaderProfile], rng: Generator
) -> list[dict[str, Any]]:
    """Simulate every reader's sessions over a random ``coverage`` share of the studies (the same studies in
    each session). Returns records {reader, session (1-based), study_id, study_instance_uid, modality, payload}."""
    records = []
    for profile in readers:
        n_read = max(1, round(profile.coverage * len(truths)))
        chosen = sorted(rng.choice(len(truths), n_read, replace=False).tolist())
        for s, params in enumerate(session_parameters(profile, rng), start=1):
            for i in chosen:
                truth = truths[i]
                records.append(
                    {
                        "reader": profile.reader_id,
                        "session": s,
                        "study_id": truth.study_id,
                        "study_instance_uid": truth.study_instance_uid,
                        "modality": "CT" if isinstance(truth, CtTruth) else "MR",
                        "payload": read_study(truth, profile, params, rng),
                    }
                )
    return records
