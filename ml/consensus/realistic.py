"""Realistic simulated readers: latent evidence, shared item difficulty, session memory (issue 18).

The SPEC §6.5 simulator (``simulate.py``) draws every reading from the consensus model's own confusion
matrices: errors independent of the item and between readers, fresh sessions. Here a reading is a
threshold on latent evidence (a liability-threshold reader):

    evidence  e_i      positives: conspicuity_o · contrast_i · sqrt(size_i)  (small, faint lesions are weak)
                       negatives: N(0, mimic_sd) (normal variants that look like lesions sit in the tail)
    reader k  y_ikt  = 1[e_i + u_ik + w_ikt > tau_ko]
                       u_ik ~ N(0, s_k · memory_sd)   the reader's own view of the item, kept across sessions
                       w_ikt ~ N(0, s_k · session_sd) session noise
                       tau_ko = tau + d_k + d_ko      reader- and output-specific thresholds
                       s_k = exp(N(0, skill_sd))      reader-specific noise scale

Every reader sees the same e_i, so a faint lesion or a strong mimic fools the whole panel (correlated
errors); u_ik makes a reader repeat its own mistakes (intra-reader κ above inter-reader κ). The defaults
give intra-reader κ ≈ 0.85 and inter-reader κ ≈ 0.6-0.7 (SPEC §5 anchors: ASAS-2019 κ 0.58-0.61,
intra-reader 0.83-0.90); ``RealisticReadings`` reports the κ of the readings actually drawn.

The ordinal CT reader (``simulate_ct``) reads a continuous severity t_i (grade + position within the
grade) through its own ordered cut points; it is not the ordinal consensus model's (bias, spread)
parameterisation. numpy only.

The pieces are public so that other item sets can be read the same way (the phantom generator's
``realistic_readers`` reads the phantoms' own lesions and CT severities with them): :func:`draw_panel`,
:func:`output_thresholds`, :func:`design`, :func:`lesion_evidence`, :func:`background_evidence`,
:func:`read_latent`; for CT :func:`ct_cuts` and :func:`read_severity`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from ml.consensus.agreement import cohen_kappa, intra_reader_kappa
from ml.consensus.agreement.kappa import Weights
from ml.consensus.simulate import SimulatedReadings

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Finding:
    """One binary MRI output: prevalence among items, conspicuity of an average lesion, contrast range."""

    name: str
    prevalence: float
    conspicuity: float
    contrast: tuple[float, float]


# Relative ordering from SPEC §5 (BME and backfill the hardest, ankylosis the easiest); BME's contrast
# range is issue 18's faint STIR contrast 0.25-0.4 relative to the others' ~0.4-1.0.
MRI_FINDINGS: tuple[Finding, ...] = (
    Finding("bme", 0.25, 2.8, (0.25, 0.4)),
    Finding("fat", 0.20, 3.2, (0.4, 1.0)),
    Finding("erosion", 0.15, 3.0, (0.4, 1.0)),
    Finding("sclerosis", 0.15, 3.4, (0.4, 1.0)),
    Finding("backfill", 0.08, 2.8, (0.4, 1.0)),
    Finding("ankylosis", 0.05, 4.5, (0.5, 1.0)),
)


@dataclass(frozen=True)
class Scenario:
    """A reading design and reader panel.

    n_readers x n_sessions; sessions after the first re-read a random ``repeat_share`` of items.
    memory_sd, session_sd: reader-item and session noise (units of the negatives' evidence spread).
    threshold: the panel's mean cut point; threshold_sd / output_threshold_sd: reader and reader-output
    offsets (reader- and output-specific sensitivity and specificity). skill_sd: log-sd of the reader
    noise scale. faint_share: extra share of positives that are tiny (size x 0.2, everyone misses most);
    mimic_share: share of negatives that carry a strong mimic N(threshold, 0.5) (everyone over-calls).
    spammers: extra readers who read every item in every session and say positive with probability 0.5,
    independent of the truth.
    """

    name: str = "realistic"
    n_readers: int = 3
    n_sessions: int = 2
    repeat_share: float = 0.3
    memory_sd: float = 0.55
    session_sd: float = 0.25
    threshold: float = 1.6
    threshold_sd: float = 0.12
    output_threshold_sd: float = 0.15
    skill_sd: float = 0.08
    mimic_sd: float = 0.8
    faint_share: float = 0.0
    mimic_share: float = 0.0
    spammers: int = 0


SCENARIOS: dict[str, Scenario] = {
    "realistic": Scenario(),
    # hard items fool everyone: more tiny lesions and strong mimics, readers otherwise consistent
    "correlated": Scenario(name="correlated", faint_share=0.25, mimic_share=0.08, memory_sd=0.4),
    # paper (a): two readers, every item read in three sessions
    "paper_a": Scenario(name="paper_a", n_readers=2, n_sessions=3, repeat_share=1.0),
    "spammer": Scenario(name="spammer", spammers=1),
}


@dataclass(frozen=True)
class RealisticReadings:
    """Readings of one output, its latent item variables, and the agreement of what was drawn.

    size, contrast: (n_items,) lesion size (relative) and contrast; NaN for negatives. evidence: (n_items,)
    latent e_i. sensitivity, specificity: (n_readers,) each reader's expected rates for this output
    (integrated over items). inter_kappa: mean Cohen κ over pairs of non-spammer readers on first
    sessions; intra_kappa: mean over non-spammer readers of κ between their own sessions (None with one
    session). n_spammers: the last ``n_spammers`` reader indices are spammers.
    """

    finding: str
    scenario: str
    readings: SimulatedReadings
    size: FloatArray
    contrast: FloatArray
    evidence: FloatArray
    sensitivity: FloatArray
    specificity: FloatArray
    inter_kappa: float | None
    intra_kappa: float | None
    n_spammers: int


@dataclass(frozen=True)
class Panel:
    """Reader parameters shared by every output of one simulation: threshold offset d_k and noise scale s_k
    of each of the scenario's ``n_readers`` human readers (spammers have none)."""

    offset: FloatArray  # (R,) threshold offset d_k
    scale: FloatArray  # (R,) noise scale s_k


def draw_panel(scenario: Scenario, rng: np.random.Generator) -> Panel:
    """Draw the panel of ``scenario``: offsets N(0, threshold_sd) centred on 0, scales exp(N(0, skill_sd))."""
    n = scenario.n_readers
    offset = rng.normal(0.0, scenario.threshold_sd, n)
    return Panel(offset - offset.mean(), np.exp(rng.normal(0.0, scenario.skill_sd, n)))


def output_thresholds(scenario: Scenario, panel: Panel, rng: np.random.Generator) -> FloatArray:
    """(R,) cut points tau_ko = tau + d_k + d_ko of one output: reader- and output-specific."""
    return np.asarray(
        scenario.threshold + panel.offset + rng.normal(0.0, scenario.output_threshold_sd, scenario.n_readers)
    )


def design(n_items: int, scenario: Scenario, rng: np.random.Generator) -> tuple[IntArray, IntArray, IntArray]:
    """(items, readers, sessions) of the design: every reader (spammers included) reads every item in
    session 0; each later session re-reads a random ``repeat_share`` of the items, by every reader."""
    items, readers, sessions = [], [], []
    n_total = scenario.n_readers + scenario.spammers
    for session in range(scenario.n_sessions):
        if session == 0:
            chosen = np.arange(n_items)
        else:
            chosen = np.flatnonzero(rng.random(n_items) < scenario.repeat_share)
        for reader in range(n_total):
            items.append(chosen)
            readers.append(np.full(chosen.size, reader))
            sessions.append(np.full(chosen.size, session))
    cat = [np.concatenate(x).astype(np.int64) for x in (items, readers, sessions)]
    return cat[0], cat[1], cat[2]


def lesion_evidence(finding: Finding, size: ArrayLike, contrast: ArrayLike) -> FloatArray:
    """Latent evidence of lesions of ``finding``: conspicuity x contrast / the finding's mid contrast x
    sqrt(size) - 0.5, ``size`` relative (1 = a typical lesion). Small, faint lesions are weak evidence."""
    mean_contrast = 0.5 * (finding.contrast[0] + finding.contrast[1])
    c = np.asarray(contrast, dtype=np.float64)
    return np.asarray(finding.conspicuity * (c / mean_contrast) * np.sqrt(np.asarray(size, float)) - 0.5)


def background_evidence(
    negative: NDArray[np.bool_], scenario: Scenario, rng: np.random.Generator
) -> FloatArray:
    """(n_items,) evidence N(0, mimic_sd) of every item, a ``mimic_share`` of the ``negative`` ones carrying a
    strong mimic N(threshold, 0.5); the caller overwrites the positives' entries with :func:`lesion_evidence`."""
    evidence = rng.normal(0.0, scenario.mimic_sd, negative.size)
    mimic = negative & (rng.random(negative.size) < scenario.mimic_share)
    evidence[mimic] = rng.normal(scenario.threshold, 0.5, mimic.sum())
    return evidence


def read_latent(
    evidence: FloatArray,
    items: IntArray,
    readers: IntArray,
    tau: FloatArray,
    panel: Panel,
    scenario: Scenario,
    rng: np.random.Generator,
) -> IntArray:
    """Binary readings 1[e_i + u_ik + w_ikt > tau] of the (items, readers) design (readers >= R are
    spammers: positive with probability 0.5). ``tau`` (R,), or (R, n_items) for a cut point per item's
    output. u_ik is drawn once per (reader, item), so a reader repeats its own view in every session."""
    n_readers = scenario.n_readers
    memory = rng.normal(0.0, scenario.memory_sd, (n_readers, evidence.size)) * panel.scale[:, None]
    labels = np.zeros(items.size, dtype=np.int64)
    human = readers < n_readers
    h_items, h_readers = items[human], readers[human]
    noise = rng.normal(0.0, scenario.session_sd, h_items.size) * panel.scale[h_readers]
    signal = evidence[h_items] + memory[h_readers, h_items] + noise
    cut = tau[h_readers] if tau.ndim == 1 else tau[h_readers, h_items]
    labels[human] = (signal > cut).astype(np.int64)
    labels[~human] = (rng.random(int((~human).sum())) < 0.5).astype(np.int64)
    return labels


def _evidence(
    n_items: int, finding: Finding, scenario: Scenario, rng: np.random.Generator
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Return truth, size, contrast, evidence (n_items,) of one output."""
    truth = (rng.random(n_items) < finding.prevalence).astype(np.int64)
    pos = truth == 1
    size = np.full(n_items, np.nan)
    contrast = np.full(n_items, np.nan)
    size[pos] = rng.lognormal(0.0, 0.6, pos.sum())
    size[pos & (rng.random(n_items) < scenario.faint_share)] *= 0.2
    contrast[pos] = rng.uniform(*finding.contrast, pos.sum())
    evidence = background_evidence(~pos, scenario, rng)
    evidence[pos] = lesion_evidence(finding, size[pos], contrast[pos])
    return truth, size, contrast, evidence


def _expected_rates(
    evidence: FloatArray, truth: IntArray, tau: FloatArray, scale: FloatArray, scenario: Scenario
) -> tuple[FloatArray, FloatArray]:
    """(R,) expected sensitivity and specificity of each reader, averaged over this output's items."""
    sd = scale * np.hypot(scenario.memory_sd, scenario.session_sd)
    p_pos = ndtr((evidence[None, :] - tau[:, None]) / sd[:, None])  # (R, n_items)
    sens = p_pos[:, truth == 1].mean(axis=1) if np.any(truth == 1) else np.full(tau.size, np.nan)
    spec = 1.0 - p_pos[:, truth == 0].mean(axis=1) if np.any(truth == 0) else np.full(tau.size, np.nan)
    return np.asarray(sens), np.asarray(spec)


def inter_reader_kappa(r: SimulatedReadings, readers: int, weights: Weights = None) -> float | None:
    """Mean Cohen κ (QWK with weights="quadratic") over pairs of readers < ``readers`` on session 0."""
    first = r.sessions == 0
    n_items = r.truth.size
    table = np.full((readers, n_items), -1, dtype=np.int64)
    keep = first & (r.readers < readers)
    table[r.readers[keep], r.items[keep]] = r.labels[keep]
    values = []
    classes = np.unique(r.labels)
    for a in range(readers):
        for b in range(a + 1, readers):
            both = (table[a] >= 0) & (table[b] >= 0)
            k = cohen_kappa(table[a, both], table[b, both], weights=weights, labels=classes).value
            if k is not None:
                values.append(k)
    return float(np.mean(values)) if values else None


def mean_intra_kappa(r: SimulatedReadings, readers: int, weights: Weights = None) -> float | None:
    """Mean over readers < ``readers`` of κ between their own sessions (None without repeats)."""
    keep = r.readers < readers
    if not np.any(r.sessions[keep] > 0):
        return None
    per = intra_reader_kappa(
        r.items[keep],
        r.readers[keep],
        r.sessions[keep],
        r.labels[keep],
        weights=weights,
    )
    values = [x.kappa.value for x in per if x.kappa.value is not None]
    return float(np.mean(values)) if values else None


def simulate_mri(
    n_items: int,
    scenario: Scenario | str = "realistic",
    *,
    findings: tuple[Finding, ...] = MRI_FINDINGS,
    seed: int = 0,
) -> list[RealisticReadings]:
    """Simulate one panel reading ``n_items`` items for every finding (one DS problem per finding)."""
    sc = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    rng = np.random.default_rng(seed)
    panel = draw_panel(sc, rng)
    return [_simulate_finding(n_items, f, sc, panel, rng) for f in findings]


def simulate_finding(
    n_items: int, finding: Finding | str, scenario: Scenario | str = "realistic", *, seed: int = 0
) -> RealisticReadings:
    """Simulate one binary output (by ``Finding`` or name in ``MRI_FINDINGS``)."""
    sc = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    f = finding if isinstance(finding, Finding) else next(x for x in MRI_FINDINGS if x.name == finding)
    rng = np.random.default_rng(seed)
    return _simulate_finding(n_items, f, sc, draw_panel(sc, rng), rng)


def _simulate_finding(
    n_items: int, finding: Finding, sc: Scenario, panel: Panel, rng: np.random.Generator
) -> RealisticReadings:
    truth, size, contrast, evidence = _evidence(n_items, finding, sc, rng)
    tau = output_thresholds(sc, panel, rng)
    items, readers, sessions = design(n_items, sc, rng)
    labels = read_latent(evidence, items, readers, tau, panel, sc, rng)
    readings = SimulatedReadings(items, readers, sessions, labels, truth)
    sens, spec = _expected_rates(evidence, truth, tau, panel.scale, sc)
    if sc.spammers:
        sens = np.concatenate([sens, np.full(sc.spammers, 0.5)])
        spec = np.concatenate([spec, np.full(sc.spammers, 0.5)])
    return RealisticReadings(
        finding=finding.name,
        scenario=sc.name,
        readings=readings,
        size=size,
        contrast=contrast,
        evidence=evidence,
        sensitivity=sens,
        specificity=spec,
        inter_kappa=inter_reader_kappa(readings, sc.n_readers),
        intra_kappa=mean_intra_kappa(readings, sc.n_readers),
        n_spammers=sc.spammers,
    )


# --- ordinal CT reader ------------------------------------------------------------------------------

CT_PRIOR = (0.40, 0.20, 0.20, 0.12, 0.08)  # imbalanced mNY grade prior (issue 18)


@dataclass(frozen=True)
class CtScenario:
    """Ordinal readers of a continuous severity: cut points per reader, memory and session noise."""

    name: str = "ct"
    n_readers: int = 3
    n_sessions: int = 2
    repeat_share: float = 0.3
    prior: tuple[float, ...] = CT_PRIOR
    memory_sd: float = 0.3
    session_sd: float = 0.2
    shift_sd: float = 0.25  # reader-wide over/under-grading
    cut_sd: float = 0.15  # each cut point's own offset (reader-specific spacing)


def ct_cuts(sc: CtScenario, n_readers: int, rng: np.random.Generator, levels: int = 5) -> FloatArray:
    """(n_readers, levels - 1) sorted cut points on the severity scale: (0.5, 1.5, ...) + a reader-wide
    shift N(0, shift_sd) + each cut's own offset N(0, cut_sd) (over/under-grading, reader-specific spacing)."""
    shift = rng.normal(0.0, sc.shift_sd, n_readers)
    offsets = rng.normal(0.0, sc.cut_sd, (n_readers, levels - 1))
    return np.asarray(np.sort(np.arange(levels - 1) + 0.5 + shift[:, None] + offsets, 1))


def read_severity(
    severity: FloatArray,
    items: IntArray,
    readers: IntArray,
    cuts: FloatArray,
    sc: CtScenario,
    rng: np.random.Generator,
) -> IntArray:
    """Ordinal readings #(cuts_k < t_i + u_ik + w_ikt) of the (items, readers) design; readers at or beyond
    ``len(cuts)`` are spammers (a uniformly random grade). u_ik is kept across sessions (memory)."""
    n_readers, levels = cuts.shape[0], cuts.shape[1] + 1
    memory = rng.normal(0.0, sc.memory_sd, (n_readers, severity.size))
    human = readers < n_readers
    h_items, h_readers = items[human], readers[human]
    seen = severity[h_items] + memory[h_readers, h_items] + rng.normal(0.0, sc.session_sd, h_items.size)
    labels = np.zeros(items.size, dtype=np.int64)
    labels[human] = np.sum(seen[:, None] > cuts[h_readers], axis=1)
    labels[~human] = rng.integers(0, levels, int((~human).sum()))
    return labels


def simulate_ct(n_items: int, scenario: CtScenario | None = None, *, seed: int = 0) -> RealisticReadings:
    """mNY 0-4 readings: severity t_i = grade + U(-0.5, 0.5); reader k says #(cuts_k < t_i + u + w).

    cuts_k = (0.5, 1.5, 2.5, 3.5) + shift_k + per-cut offsets, sorted: reader thresholds, not the
    Gaussian (bias, spread) confusion of SPEC §4.6. κ reported are quadratic-weighted (QWK).
    """
    sc = scenario or CtScenario()
    rng = np.random.default_rng(seed)
    k = len(sc.prior)
    truth = rng.choice(k, size=n_items, p=np.asarray(sc.prior)).astype(np.int64)
    severity = truth + rng.uniform(-0.5, 0.5, n_items)
    cuts = ct_cuts(sc, sc.n_readers, rng, k)
    plan = replace(Scenario(), n_readers=sc.n_readers, n_sessions=sc.n_sessions, repeat_share=sc.repeat_share)
    items, readers, sessions = design(n_items, plan, rng)
    labels = read_severity(severity, items, readers, cuts, sc, rng)
    readings = SimulatedReadings(items, readers, sessions, labels, truth)
    correct = np.array(
        [np.mean(labels[(readers == r)] == truth[items[readers == r]]) for r in range(sc.n_readers)]
    )
    nan = np.full(n_items, np.nan)
    return RealisticReadings(
        finding="ct_mny",
        scenario=sc.name,
        readings=readings,
        size=nan,
        contrast=nan,
        evidence=severity,
        sensitivity=correct,  # for the ordinal reader: share of readings equal to the true grade
        specificity=correct,
        inter_kappa=inter_reader_kappa(readings, sc.n_readers, "quadratic"),
        intra_kappa=mean_intra_kappa(readings, sc.n_readers, "quadratic"),
        n_spammers=0,
    )
