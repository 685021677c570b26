"""Output order and the three training targets of the lesion classifier (SPEC §7.2, §4.7).

Output order (14 per joint, paper (a) Fig. 9; ``ml.vocab.OUTPUTS``, read from the ``mri_sij`` scheme)::

     0- 3  bme      iliac_upper, iliac_lower, sacral_upper, sacral_lower
     4- 7  erosion  (same quadrant order)
     8-11  fat      (same quadrant order)
    12     sclerosis  joint
    13     ankylosis  joint

Targets per (study, joint, output):

* ``majority``: share of all readings (readers x sessions pooled) saying 1, thresholded at 0.5; an exact
  tie gives 0.5; NaN when nobody read the item.
* ``soft``: Dawid-Skene posterior P(1) (SPEC §4), one ``ml.consensus.fit`` per lesion type pooling joints
  and quadrants (SPEC §4.8), sessions pooled; or the snapshot's frozen soft labels when it carries them.
* ``readers``: the raw readings (R, S, 14) with -1 for missing, for the confusion-layer loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.consensus import fit as consensus_fit
from ml.data.snapshot import StudyRecord
from ml.vocab import JOINTS, MRI, OUTPUTS
from ml.vocab import OUTPUT_NAMES as OUTPUT_NAMES  # the lesion CLI, bench and tests name outputs by it

F32 = NDArray[np.float32]
I8 = NDArray[np.int8]

#: Lesion types in output order: quadrant-level (bme, erosion, fat), then joint-level (sclerosis, ankylosis).
QUADRANT_LESION_ORDER = MRI.output_quadrant_lesions
JOINT_LESION_ORDER = MRI.lesions_of("joint")
LESION_TYPES = QUADRANT_LESION_ORDER + JOINT_LESION_ORDER
#: (14,) index into LESION_TYPES of each output.
OUTPUT_LESION = np.array([LESION_TYPES.index(lesion) for lesion, _ in OUTPUTS], dtype=np.int64)
TARGET_MODES = ("majority", "soft", "readers")


def reader_tensor(studies: Sequence[StudyRecord], readers: Sequence[str], n_sessions: int) -> I8:
    """Readings as (N studies, 2 joints, R readers, S sessions, 14) int8; -1 where missing.

    Sessions beyond ``n_sessions`` are dropped; readers not in ``readers`` are ignored.
    """
    index = {r: i for i, r in enumerate(readers)}
    out = np.full((len(studies), len(JOINTS), len(readers), n_sessions, len(OUTPUTS)), -1, dtype=np.int8)
    for n, study in enumerate(studies):
        for reading in study.readings:
            if reading.reader not in index or not 1 <= reading.session <= n_sessions:
                continue
            for j, joint in enumerate(JOINTS):
                for o, (lesion, region) in enumerate(OUTPUTS):
                    value = reading.values.get((joint, region, lesion))
                    if value is not None:
                        out[n, j, index[reading.reader], reading.session - 1, o] = value
    return out


def majority_targets(readings: I8) -> F32:
    """Majority vote (..., 14) of readings (..., R, S, 14): 1, 0, 0.5 on a tie, NaN when unread."""
    seen = readings >= 0
    count = seen.sum(axis=(-3, -2))
    ones = (readings == 1).sum(axis=(-3, -2))
    share = np.divide(ones, count, out=np.full(count.shape, np.nan), where=count > 0)
    vote = np.where(share > 0.5, 1.0, np.where(share < 0.5, 0.0, 0.5))
    return np.where(count > 0, vote, np.nan).astype(np.float32)


def fit_soft_targets(readings: I8, **fit_kwargs: Any) -> tuple[F32, dict[str, Any]]:
    """Dawid-Skene posteriors P(1) (..., 14) from readings (..., R, S, 14), one fit per lesion type.

    Items are (study, joint, quadrant) for quadrant lesions and (study, joint) for joint lesions (SPEC
    §4.8); repeat sessions pool as repeated readings (SPEC §4.4 option 1). Unread items get NaN. Returns
    the posteriors and a JSON-ready summary (per lesion: reader sensitivity/specificity, iterations).
    """
    lead = readings.shape[:-3]
    flat = readings.reshape(-1, *readings.shape[-3:])  # (M, R, S, 14)
    out = np.full((flat.shape[0], len(OUTPUTS)), np.nan, dtype=np.float32)
    summary: dict[str, Any] = {}
    for t, lesion in enumerate(LESION_TYPES):
        cols = np.flatnonzero(t == OUTPUT_LESION)
        block = flat[..., cols]  # (M, R, S, Q)
        m, r, s, q = np.nonzero(block >= 0)
        if m.size == 0:
            continue
        items = m * len(cols) + q
        result = consensus_fit(
            items,
            r,
            block[m, r, s, q].astype(np.int64),
            2,
            model="full",
            n_items=flat.shape[0] * len(cols),
            n_readers=flat.shape[1],
            **fit_kwargs,
        )
        post = result.posterior[:, 1].reshape(flat.shape[0], len(cols)).astype(np.float32)
        read = (block >= 0).any(axis=(1, 2))
        out[:, cols] = np.where(read, post, np.nan)
        summary[lesion] = {
            "sensitivity": np.round(result.sensitivity, 4).tolist(),
            "specificity": np.round(result.specificity, 4).tolist(),
            "n_iter": result.n_iter,
            "converged": result.converged,
        }
    return out.reshape(*lead, len(OUTPUTS)), summary


def snapshot_soft_targets(studies: Sequence[StudyRecord]) -> F32 | None:
    """The snapshot's frozen soft labels as (N, 2, 14) P(1) (NaN where absent), or None if any study lacks them."""
    if not studies or any(s.soft is None for s in studies):
        return None
    out = np.full((len(studies), len(JOINTS), len(OUTPUTS)), np.nan, dtype=np.float32)
    for n, study in enumerate(studies):
        assert study.soft is not None
        for j, joint in enumerate(JOINTS):
            for o, (lesion, region) in enumerate(OUTPUTS):
                post = study.soft.get((joint, region, lesion))
                if post is not None:
                    out[n, j, o] = post[1]
    return out


def reference_targets(studies: Sequence[StudyRecord]) -> F32:
    """Reference labels (N, 2, 14) (phantom truth or adjudicated gold), NaN where absent."""
    out = np.full((len(studies), len(JOINTS), len(OUTPUTS)), np.nan, dtype=np.float32)
    for n, study in enumerate(studies):
        for j, joint in enumerate(JOINTS):
            for o, (lesion, region) in enumerate(OUTPUTS):
                value = (study.reference or {}).get((joint, region, lesion))
                if value is not None:
                    out[n, j, o] = value
    return out
