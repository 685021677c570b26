"""Generate one phantom study end to end: images -> DICOM series (+ SEG) -> ``truth.json``.

Study folder layout (``<study_id>`` is ``mri-0003`` or ``ct-0007``)::

    <out>/<study_id>/T1/0001.dcm ...      MRI: one file per slice, InstanceNumber 1..N along the normal
    <out>/<study_id>/STIR/0001.dcm ...
    <out>/<study_id>/CT/0001.dcm ...      CT
    <out>/<study_id>/SEG/seg.dcm          CT pelvis-bone segmentation (highdicom)
    <out>/<study_id>/truth.json           ground truth (never shown to readers)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ml.data.truth import CtJointTruth, CtTruth, MriTruth, SeriesRef, save_truth
from ml.phantoms.ct import CtPhantom, make_ct_phantom
from ml.phantoms.dicom_io import (
    SEGMENT_LABELS,
    StudyMeta,
    ct_extra,
    make_uid,
    mr_extra,
    write_pelvis_seg,
    write_series,
)
from ml.phantoms.difficulty import EASY, Difficulty
from ml.phantoms.mri import MriPhantom, make_mri_phantom
from ml.phantoms.schema import (
    CT_SERIES_DESCRIPTION,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    GROUPINGS,
    JOINTS,
    MRI_SEQUENCES,
    grouping_class,
    mny_positive,
)

MR_SCALE = 1000.0  # arbitrary units -> stored integer values
MR_MAX = 4095


def study_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    """Independent, reproducible generator per (seed, kind, index)."""
    return np.random.default_rng([seed, {"mri": 1, "ct": 2}[kind], index])


def study_meta(seed: int, study_id: str, index: int, frame_of_reference_uid: str) -> StudyMeta:
    """Patient/study attributes of one phantom; dates are fixed so output is reproducible."""
    return StudyMeta(
        patient_id=f"PHANTOM-{seed}-{study_id}",
        patient_name=f"PHANTOM-{seed}^{study_id.upper()}",
        study_instance_uid=make_uid(seed, study_id, "study"),
        study_id=str(index + 1),
        study_date=f"2026{1 + index % 12:02d}{1 + index % 28:02d}",
        study_time="120000",
        frame_of_reference_uid=frame_of_reference_uid,
        image_comments=f"{GENERATOR_NAME} {GENERATOR_VERSION} seed={seed} study={study_id}",
    )


def to_uint16(image: np.ndarray, scale: float, max_value: int) -> np.ndarray:
    """Scale float images to stored uint16 values clipped to [0, max_value]."""
    return np.clip(np.rint(image * scale), 0, max_value).astype(np.uint16)


def write_mri_study(
    out: Path, seed: int, index: int, phantom: MriPhantom | None = None, difficulty: Difficulty = EASY
) -> MriTruth:
    """Generate (unless given) and write MRI phantom ``index``; return its truth (also saved as truth.json)."""
    study_id = f"mri-{index:04d}"
    phantom = phantom or make_mri_phantom(study_rng(seed, "mri", index), difficulty)
    meta = study_meta(seed, study_id, index, make_uid(seed, study_id, "for"))
    folder = out / study_id
    series: dict[str, SeriesRef] = {}
    for number, sequence in enumerate(MRI_SEQUENCES, start=1):
        image = phantom.t1 if sequence == "T1" else phantom.stir
        series_uid = make_uid(seed, study_id, sequence)
        sop_uids = [make_uid(seed, study_id, sequence, k) for k in range(phantom.geometry.n_slices)]
        write_series(
            folder / sequence,
            to_uint16(image, MR_SCALE, MR_MAX),
            phantom.geometry,
            meta,
            modality="MR",
            description=sequence,
            series_uid=series_uid,
            series_number=number,
            sop_uids=sop_uids,
            extra=mr_extra(sequence, MR_MAX),
        )
        series[sequence] = SeriesRef(sequence, "MR", series_uid, sop_uids, sequence)
    truth = MriTruth(
        kind="mri",
        study_id=study_id,
        generator={"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        seed=seed,
        index=index,
        parameters=phantom.params.to_dict() | {"intensity_scale": MR_SCALE, "difficulty": difficulty.name},
        patient_id=meta.patient_id,
        study_instance_uid=meta.study_instance_uid,
        frame_of_reference_uid=meta.frame_of_reference_uid,
        series=series,
        geometry=phantom.geometry.to_dict(),
        slices=phantom.slices,
        joints=phantom.joints,
        lesions=[asdict(lesion) for lesion in phantom.lesions],
    )
    save_truth(truth, folder / "truth.json")
    return truth


def write_ct_study(
    out: Path, seed: int, index: int, phantom: CtPhantom | None = None, difficulty: Difficulty = EASY
) -> CtTruth:
    """Generate (unless given) and write CT phantom ``index`` with its SEG; return its truth (saved as truth.json)."""
    study_id = f"ct-{index:04d}"
    phantom = phantom or make_ct_phantom(study_rng(seed, "ct", index), difficulty=difficulty)
    p = phantom.params
    meta = study_meta(seed, study_id, index, make_uid(seed, study_id, "for"))
    folder = out / study_id
    stored = np.clip(np.rint((phantom.hu - p.rescale_intercept) / p.rescale_slope), 0, 65535).astype(
        np.uint16
    )
    series_uid = make_uid(seed, study_id, "CT")
    sop_uids = [make_uid(seed, study_id, "CT", k) for k in range(phantom.geometry.n_slices)]
    datasets = write_series(
        folder / "CT",
        stored,
        phantom.geometry,
        meta,
        modality="CT",
        description=CT_SERIES_DESCRIPTION,
        series_uid=series_uid,
        series_number=1,
        sop_uids=sop_uids,
        extra=ct_extra(p.rescale_slope, p.rescale_intercept),
    )
    seg_uid, seg_sop = make_uid(seed, study_id, "SEG"), make_uid(seed, study_id, "SEG", 0)
    write_pelvis_seg(
        folder / "SEG" / "seg.dcm",
        datasets,
        phantom.labels,
        series_uid=seg_uid,
        sop_uid=seg_sop,
        comments=meta.image_comments,
        date=meta.study_date,
        time=meta.study_time,
    )
    grades = p.grades
    truth = CtTruth(
        kind="ct",
        study_id=study_id,
        generator={"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        seed=seed,
        index=index,
        parameters=p.to_dict() | {"difficulty": difficulty.name},
        patient_id=meta.patient_id,
        study_instance_uid=meta.study_instance_uid,
        frame_of_reference_uid=meta.frame_of_reference_uid,
        series={
            "CT": SeriesRef(CT_SERIES_DESCRIPTION, "CT", series_uid, sop_uids, "CT"),
            "SEG": SeriesRef("Pelvis bone SEG", "SEG", seg_uid, [seg_sop], "SEG"),
        },
        geometry=phantom.geometry.to_dict(),
        rescale_slope=p.rescale_slope,
        rescale_intercept=p.rescale_intercept,
        joints={j: CtJointTruth(joint=j, mny_grade=grades[j], features=phantom.features[j]) for j in JOINTS},
        total_score=grades["left"] + grades["right"],
        mny_positive=mny_positive(grades["left"], grades["right"]),
        groupings={name: {j: grouping_class(name, grades[j]) for j in JOINTS} for name in GROUPINGS},
        segments={str(k): v for k, v in SEGMENT_LABELS.items()},
    )
    save_truth(truth, folder / "truth.json")
    return truth
