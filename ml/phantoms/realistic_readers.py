"""Realistic simulated readers of phantom studies (issue 18): ``ml.consensus.realistic``'s reader model
reading the phantoms' own lesions, in the product API's payload format (:mod:`ml.phantoms.readers`).

An MRI item is one of a study's 28 values (14 outputs x 2 joints). A positive item's latent evidence comes
from the phantom lesions that made it positive (``truth.lesions``), through
:func:`ml.consensus.realistic.lesion_evidence`:

- **size**: the lesion's extent along the joint x depth x slices, its log standardised per lesion kind
  to the reader model's lognormal(0, 0.6) over the ``realistic`` preset's lesions (:func:`size_reference`),
  so a lesion of median size for its kind under ``realistic`` has size 1; a lesion that only spills into
  the neighbouring quadrant counts with ``SPILL_SIZE`` of its size there; the strongest lesion of an item
  decides.
- **contrast**: a BME's STIR contrast over marrow as the phantom drew it (0.25-0.4 under ``realistic``);
  an "intense" BME (absolute STIR signal, every BME of ``easy``) ``INTENSE_CONTRAST``. The other kinds'
  phantom signal is fixed per kind, so a reader-perceived contrast is drawn from the finding's range.

Negatives carry background evidence (and, in the ``correlated`` scenario, strong mimics). So the items
the images make hard (small, faint lesions) are the items every reader misses: correlated errors. Each
reader has its own threshold per output (14 outputs: output-specific sensitivity and specificity), a
noise scale, a memory of each item kept across sessions, and draws its joint lines with its own offset
and noise. CT: each joint's latent severity (the phantom's own ``parameters.severity``, which also drove
its image; grade + U(-0.5, 0.5) where the preset has none) read through each reader's cut points
(:func:`ml.consensus.realistic.ct_cuts`).

Design: every reader reads every study in session 1; each later session re-reads a random
``repeat_share`` of the studies (all readers). Spammers (scenario ``spammer``) read every study in every
session at random. :func:`reader_agreement` reports the κ of what was drawn: per MRI output the mean
pairwise Cohen κ and Fleiss κ between readers (first session) and the mean intra-reader κ; CT the same
with quadratic weights (QWK), plus unweighted Cohen κ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

from ml.consensus.agreement import cohen_kappa, fleiss_kappa, intra_reader_kappa
from ml.consensus.agreement.kappa import Weights
from ml.consensus.realistic import (
    MRI_FINDINGS,
    SCENARIOS,
    CtScenario,
    Finding,
    Scenario,
    background_evidence,
    ct_cuts,
    draw_panel,
    lesion_evidence,
    read_latent,
    read_severity,
)
from ml.data.truth import CtTruth, MriTruth, Truth
from ml.phantoms.difficulty import REALISTIC
from ml.phantoms.mri_lesions import LesionSpec, plan_lesions
from ml.phantoms.readers import reader_contour
from ml.phantoms.schema import JOINTS, MNY_GRADES
from ml.vocab import OUTPUTS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Share of a lesion's size that counts in the neighbouring quadrant it spills into [design].
SPILL_SIZE = 0.3
#: Contrast of an intense BME (absolute STIR signal 0.5-1.0, ~3x the faint ones' midpoint) [design].
INTENSE_CONTRAST = 1.0
#: log-sd of the reader model's lesion sizes (``ml.consensus.realistic``: lognormal(0, 0.6)).
SIZE_LOG_SD = 0.6
FINDINGS: dict[str, Finding] = {f.name: f for f in MRI_FINDINGS}
SCENARIO_NAMES = tuple(SCENARIOS)


@dataclass(frozen=True)
class RealisticReader:
    """One simulated reader of a realistic panel (what ``readers.json`` records of it).

    ``thresholds[output]``: the cut point of each of the 14 MRI outputs; ``ct_cuts``: its 4 cut points on
    the CT severity scale; ``noise_scale``: s_k; ``sensitivity`` / ``specificity``: the rates of its
    drawn MRI readings against the truth per output (None where the set has no positive / negative).
    """

    reader_id: str
    kind: str  # "normal" or "spammer"
    threshold_offset: float
    noise_scale: float
    thresholds: dict[str, float]
    ct_cuts: list[float]
    contour_offset_mm: float
    contour_noise_mm: float
    sensitivity: dict[str, float | None]
    specificity: dict[str, float | None]


def _size_measure(lesion: LesionSpec) -> float:
    """Extent along the joint x depth (1 mm for ankylosis, which has none) x slices, mm^2."""
    return 2.0 * lesion.half_extent_mm * max(lesion.depth_mm, 1.0) * len(lesion.slices)


@cache
def size_reference() -> dict[str, tuple[float, float]]:
    """(mean, sd) of log size per lesion kind over 4000 planned scans of the ``realistic`` preset (fixed
    seed; every slice long enough, so run lengths are not capped)."""
    rng = np.random.default_rng(20261206)
    lengths = {j: np.full(12, 60.0) for j in JOINTS}
    logs: dict[str, list[float]] = {}
    for _ in range(4000):
        for lesion in plan_lesions(rng, lengths, REALISTIC):
            logs.setdefault(lesion.kind, []).append(float(np.log(_size_measure(lesion))))
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in logs.items()}


def relative_size(lesion: LesionSpec) -> float:
    """The lesion's size on the reader model's scale: exp(0.6 z), z its standardised log size."""
    mean, sd = size_reference()[lesion.kind]
    return float(np.exp(SIZE_LOG_SD * (np.log(_size_measure(lesion)) - mean) / max(sd, 1e-9)))


def _lesion_contrast(lesion: LesionSpec, finding: Finding, rng: Generator) -> float:
    if lesion.kind == "bme":
        return lesion.contrast if lesion.contrast > 0 else INTENSE_CONTRAST
    return float(rng.uniform(*finding.contrast))


def _side(quadrant: str) -> str:
    return quadrant.split("_")[0]


def item_evidence(
    truth: MriTruth, scenario: Scenario, rng: Generator
) -> tuple[IntArray, FloatArray, IntArray]:
    """(truth (28,), evidence (28,), output index (28,)) of one MRI study's values, in ``truth.values()``
    order. A positive item's evidence is its strongest lesion's (:mod:`ml.consensus.realistic`); a
    ``faint_share`` of positives count with a fifth of their size (the ``correlated`` scenario)."""
    lesions = [LesionSpec(**{**x, "slices": tuple(x["slices"])}) for x in truth.lesions]
    values = truth.values()
    labels = np.array([v["value"] for v in values], dtype=np.int64)
    output = np.array([OUTPUTS.index((v["lesion"], v["region"])) for v in values], dtype=np.int64)
    evidence = background_evidence(labels == 0, scenario, rng)
    for i, v in enumerate(values):
        if not labels[i]:
            continue
        kind, region, joint = v["lesion"], v["region"], v["joint"]
        finding = FINDINGS[kind]
        faint = 0.2 if rng.random() < scenario.faint_share else 1.0
        best = None
        for lesion in lesions:
            if lesion.kind != kind or lesion.joint != joint:
                continue
            if region == "joint" or lesion.quadrant == region:
                share = 1.0
            elif lesion.spill and lesion.quadrant and _side(lesion.quadrant) == _side(region):
                share = SPILL_SIZE
            else:
                continue
            size = relative_size(lesion) * share * faint
            e = float(lesion_evidence(finding, size, _lesion_contrast(lesion, finding, rng)))
            best = e if best is None else max(best, e)
        if best is None:  # labelled without a planned lesion of its own: a typical one
            best = float(lesion_evidence(finding, faint, np.mean(finding.contrast)))
        evidence[i] = best
    return labels, evidence, output


def ct_severity(truth: CtTruth, rng: Generator) -> tuple[IntArray, FloatArray]:
    """(grades (2,), latent severity (2,)) of one CT study's joints, in ``truth.values()`` order."""
    drawn = truth.parameters.get("severity") or {}
    grades = np.array([v["value"] for v in truth.values()], dtype=np.int64)
    severity = np.array(
        [
            float(drawn[j]) if j in drawn else float(g + rng.uniform(-0.5, 0.5))
            for j, g in zip(JOINTS, grades, strict=True)
        ]
    )
    return grades, severity


def scenario_for(
    name: str, n_readers: int | None = None, n_sessions: int | None = None, spammer: bool = False
) -> Scenario:
    """The named scenario of ``ml.consensus.realistic.SCENARIOS`` with optional panel overrides."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown reader scenario {name!r}: choose one of {', '.join(SCENARIOS)}")
    sc = SCENARIOS[name]
    if n_readers:
        sc = replace(sc, n_readers=n_readers)
    if n_sessions:
        sc = replace(sc, n_sessions=n_sessions)
    if spammer and not sc.spammers:
        sc = replace(sc, spammers=1)
    return sc


def _study_design(n_studies: int, sc: Scenario, rng: Generator) -> list[tuple[int, int, int]]:
    """(reader, session 0-based, study) of every reading: all studies in session 0, a ``repeat_share`` of
    them in each later one, by every reader; spammers read every study in every session."""
    out: list[tuple[int, int, int]] = []
    chosen = [list(range(n_studies))] + [
        np.flatnonzero(rng.random(n_studies) < sc.repeat_share).tolist() for _ in range(1, sc.n_sessions)
    ]
    for reader in range(sc.n_readers + sc.spammers):
        for session, studies in enumerate(chosen):
            if reader >= sc.n_readers:
                studies = list(range(n_studies))
            out.extend((reader, session, s) for s in studies)
    return out


def _kappas(
    items: IntArray,
    readers: IntArray,
    sessions: IntArray,
    labels: IntArray,
    n_readers: int,
    weights: Weights = None,
    levels: int = 2,
) -> dict[str, float | None]:
    """Mean pairwise Cohen κ, Fleiss κ (unweighted only) on session 0 and the mean intra-reader κ."""
    keep = readers < n_readers
    items, readers, sessions, labels = items[keep], readers[keep], sessions[keep], labels[keep]
    n_items = int(items.max()) + 1 if items.size else 0
    table = np.full((n_readers, n_items), -1, dtype=np.int64)
    first = sessions == 0
    table[readers[first], items[first]] = labels[first]
    classes = np.arange(levels)
    pairs = []
    for a in range(n_readers):
        for b in range(a + 1, n_readers):
            both = (table[a] >= 0) & (table[b] >= 0)
            k = cohen_kappa(table[a, both], table[b, both], weights=weights, labels=classes).value
            if k is not None:
                pairs.append(k)
    out: dict[str, float | None] = {"inter": float(np.mean(pairs)) if pairs else None}
    if weights is None and n_readers >= 2:
        full = (table >= 0).all(axis=0)
        counts = np.stack([(table[:, full] == c).sum(axis=0) for c in classes], axis=1)
        out["fleiss"] = fleiss_kappa(counts).value if full.any() else None
    intra = None
    if np.any(sessions > 0):
        per = intra_reader_kappa(items, readers, sessions, labels, weights=weights)
        values = [x.kappa.value for x in per if x.kappa.value is not None]
        intra = float(np.mean(values)) if values else None
    out["intra"] = intra
    return out


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def _rates(labels: IntArray, truth: IntArray) -> tuple[float | None, float | None]:
    pos, neg = truth == 1, truth == 0
    sens = float(labels[pos].mean()) if pos.any() else None
    spec = float(1.0 - labels[neg].mean()) if neg.any() else None
    return sens, spec


@dataclass
class _Drawn:
    """Flat readings of one modality: (items, readers, sessions, labels) + item truth and output."""

    items: IntArray
    readers: IntArray
    sessions: IntArray
    labels: IntArray
    truth: IntArray
    output: IntArray


def simulate_realistic_readings(
    truths: Sequence[Truth], sc: Scenario, rng: Generator, ct: CtScenario | None = None
) -> tuple[list[dict[str, Any]], list[RealisticReader], dict[str, Any]]:
    """Read ``truths`` with a realistic panel of scenario ``sc``.

    Returns (records {reader, session (1-based), study_id, study_instance_uid, modality, payload} in the
    format of :func:`ml.phantoms.readers.simulate_readings`, the readers, the agreement of the drawn
    readings (:func:`reader_agreement`))."""
    ct = ct or CtScenario()
    n_total = sc.n_readers + sc.spammers
    panel = draw_panel(sc, rng)
    tau = (
        sc.threshold
        + panel.offset[:, None]
        + rng.normal(0.0, sc.output_threshold_sd, (sc.n_readers, len(OUTPUTS)))
    )
    cuts = ct_cuts(ct, sc.n_readers, rng, len(MNY_GRADES))
    contour_offset = rng.normal(0.0, 0.5, n_total)
    contour_noise = rng.uniform(0.2, 0.8, n_total)
    contour_offset[sc.n_readers :] = rng.normal(0.0, 3.0, sc.spammers)  # careless lines
    contour_noise[sc.n_readers :] = 2.0
    mri = [t for t in truths if isinstance(t, MriTruth)]
    cts = [t for t in truths if isinstance(t, CtTruth)]

    # MRI: items are the studies' values, 28 per study
    values = [item_evidence(t, sc, rng) for t in mri]
    m_truth = np.concatenate([v[0] for v in values]) if values else np.zeros(0, np.int64)
    m_evidence = np.concatenate([v[1] for v in values]) if values else np.zeros(0)
    m_output = np.concatenate([v[2] for v in values]) if values else np.zeros(0, np.int64)
    per_study = len(OUTPUTS) * len(JOINTS)
    m_design = _study_design(len(mri), sc, rng)
    m_items = np.array([s * per_study + i for _, _, s in m_design for i in range(per_study)], dtype=np.int64)
    m_readers = np.repeat(np.array([r for r, _, _ in m_design], dtype=np.int64), per_study)
    m_sessions = np.repeat(np.array([t for _, t, _ in m_design], dtype=np.int64), per_study)
    cut = tau[:, m_output] if m_output.size else tau[:, :0]
    m_labels = read_latent(m_evidence, m_items, m_readers, cut, panel, sc, rng)

    # CT: items are the joints, 2 per study
    graded = [ct_severity(t, rng) for t in cts]
    c_truth = np.concatenate([g[0] for g in graded]) if graded else np.zeros(0, np.int64)
    c_severity = np.concatenate([g[1] for g in graded]) if graded else np.zeros(0)
    c_design = _study_design(len(cts), sc, rng)
    n_joints = len(JOINTS)
    c_items = np.array([s * n_joints + i for _, _, s in c_design for i in range(n_joints)], dtype=np.int64)
    c_readers = np.repeat(np.array([r for r, _, _ in c_design], dtype=np.int64), n_joints)
    c_sessions = np.repeat(np.array([t for _, t, _ in c_design], dtype=np.int64), n_joints)
    c_labels = read_severity(c_severity, c_items, c_readers, cuts, ct, rng)

    ids = [f"R{k + 1}" for k in range(n_total)]
    styles = [_ContourStyle(float(contour_offset[k]), float(contour_noise[k])) for k in range(n_total)]
    records: list[dict[str, Any]] = []
    for studies, design, labels, n_per, modality in (
        (mri, m_design, m_labels, per_study, "MR"),
        (cts, c_design, c_labels, n_joints, "CT"),
    ):
        for row, (reader, session, s) in enumerate(design):
            truth = studies[s]
            given = labels[row * n_per : (row + 1) * n_per]
            payload_values = [v | {"value": int(g)} for v, g in zip(truth.values(), given, strict=True)]
            contours = []
            if isinstance(truth, MriTruth):
                contours = [
                    reader_contour(r, truth, styles[reader], rng)
                    for r in truth.slices
                    if r.quadrant_rule != "not_scored" and r.joint in JOINTS
                ]
            records.append(
                {
                    "reader": ids[reader],
                    "session": session + 1,
                    "study_id": truth.study_id,
                    "study_instance_uid": truth.study_instance_uid,
                    "modality": modality,
                    "payload": {"values": payload_values, "contours": contours},
                }
            )
    # reader, session, MRI before CT; studies in their order (stable)
    records.sort(key=lambda r: (int(r["reader"][1:]), r["session"], r["modality"] != "MR"))

    mri_drawn = _Drawn(m_items, m_readers, m_sessions, m_labels, m_truth, m_output)
    ct_drawn = _Drawn(c_items, c_readers, c_sessions, c_labels, c_truth, np.zeros_like(c_truth))
    readers = []
    for k in range(n_total):
        human = k < sc.n_readers
        sens: dict[str, float | None] = {}
        spec: dict[str, float | None] = {}
        for o, (lesion, region) in enumerate(OUTPUTS):
            mine = (m_readers == k) & (m_output[m_items] == o) if m_items.size else np.zeros(0, bool)
            sens[f"{lesion}/{region}"], spec[f"{lesion}/{region}"] = _rates(
                m_labels[mine], m_truth[m_items[mine]]
            )
        readers.append(
            RealisticReader(
                reader_id=ids[k],
                kind="normal" if human else "spammer",
                threshold_offset=float(panel.offset[k]) if human else 0.0,
                noise_scale=float(panel.scale[k]) if human else 0.0,
                thresholds={f"{a}/{b}": float(tau[k, o]) for o, (a, b) in enumerate(OUTPUTS)}
                if human
                else {},
                ct_cuts=[float(c) for c in cuts[k]] if human else [],
                contour_offset_mm=float(contour_offset[k]),
                contour_noise_mm=float(contour_noise[k]),
                sensitivity=sens,
                specificity=spec,
            )
        )
    return records, readers, reader_agreement(mri_drawn, ct_drawn, sc)


@dataclass(frozen=True)
class _ContourStyle:
    """What :func:`ml.phantoms.readers.reader_contour` reads of a reader."""

    contour_offset_mm: float
    contour_noise_mm: float


def reader_agreement(mri: _Drawn, ct: _Drawn, sc: Scenario) -> dict[str, Any]:
    """κ of the drawn readings between the scenario's human readers (spammers left out).

    ``mri``: per output {inter (mean pairwise Cohen κ, session 1), fleiss, intra (mean over readers of κ
    between their own sessions; None without repeats)} and their means over the outputs where defined;
    ``ct``: the same with quadratic weights (``qwk_inter``, ``qwk_intra``) and unweighted (``inter``,
    ``intra``, ``fleiss``)."""
    per_output: dict[str, dict[str, float | None]] = {}
    for o, (lesion, region) in enumerate(OUTPUTS):
        if not mri.items.size:
            break
        keep = mri.output[mri.items] == o
        # re-index this output's items 0..n-1
        codes, local = np.unique(mri.items[keep], return_inverse=True)
        per_output[f"{lesion}/{region}"] = _kappas(
            local.astype(np.int64), mri.readers[keep], mri.sessions[keep], mri.labels[keep], sc.n_readers
        ) | {"n_items": int(codes.size), "positives": int(mri.truth[codes].sum())}
    out: dict[str, Any] = {
        "scenario": sc.name,
        "n_readers": sc.n_readers,
        "spammers": sc.spammers,
        "mri": {
            "inter": _mean([v["inter"] for v in per_output.values()]),
            "fleiss": _mean([v.get("fleiss") for v in per_output.values()]),
            "intra": _mean([v["intra"] for v in per_output.values()]),
            "per_output": per_output,
        },
    }
    if ct.items.size:
        levels = len(MNY_GRADES)
        qwk = _kappas(ct.items, ct.readers, ct.sessions, ct.labels, sc.n_readers, "quadratic", levels)
        plain = _kappas(ct.items, ct.readers, ct.sessions, ct.labels, sc.n_readers, None, levels)
        out["ct"] = (
            {"qwk_inter": qwk["inter"], "qwk_intra": qwk["intra"]} | plain | {"n_items": int(ct.truth.size)}
        )
    return out


def readers_json(
    sc: Scenario, ct: CtScenario, readers: list[RealisticReader], agreement: dict[str, Any]
) -> dict[str, Any]:
    """The ``readings/readers.json`` document of a realistic panel."""
    return {
        "model": "ml.consensus.realistic",
        "scenario": asdict(sc),
        "ct_scenario": asdict(ct),
        "readers": [asdict(r) for r in readers],
        "agreement": agreement,
    }
