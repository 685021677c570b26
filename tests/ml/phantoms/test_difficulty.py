"""Difficulty presets of the phantom generator (issue 18): what ``realistic`` changes, and that ``easy`` is the
generator as it was."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ml.phantoms.cli import generate, main
from ml.phantoms.ct import CtPhantom, make_ct_phantom, sample_ct_params
from ml.phantoms.difficulty import EASY, REALISTIC, difficulty
from ml.phantoms.mri import (
    MriPhantom,
    ghosting,
    mri_geometry,
    partial_volume,
    render_clean,
    sample_mri_params,
)
from ml.phantoms.mri_lesions import LesionSpec, plan_lesions
from ml.phantoms.studies import study_rng

LENGTHS = {j: np.full(14, 55.0) for j in ("left", "right")}


def _plans(d, n=300):
    rng = np.random.default_rng(123)
    return [lesion for _ in range(n) for lesion in plan_lesions(rng, LENGTHS, d)]


def test_easy_is_the_generator_as_it_was(mri_phantom: MriPhantom, ct_phantom: CtPhantom) -> None:
    """Pixels of the shared fixtures (seed 0, ``easy``, the default) equal those before the presets existed
    (fingerprint taken at 88243a5): a preset that drew one extra random number would shift every study."""
    h = hashlib.sha256()
    for image in (mri_phantom.t1, mri_phantom.stir, ct_phantom.hu):
        h.update(image.tobytes())
    assert h.hexdigest()[:16] == "66795941048cd9de"


def test_unknown_difficulty_is_refused_naming_the_presets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="unknown difficulty 'medium': choose one of easy, realistic, hard"):
        difficulty("medium")
    with pytest.raises(SystemExit):
        main(["--mri", "1", "--out", "/tmp/unused", "--difficulty", "medium"])
    assert "invalid choice: 'medium'" in capsys.readouterr().err


def test_realistic_mri_is_noisier_than_easy() -> None:
    rng = np.random.default_rng(5)
    easy = [sample_mri_params(rng, EASY).snr_stir for _ in range(40)]
    real = [sample_mri_params(rng, REALISTIC).snr_stir for _ in range(40)]
    assert min(easy) >= 12.0 and max(real) <= 10.0 and min(real) >= 4.0


def test_realistic_bme_is_faint_except_an_intense_share() -> None:
    easy = [x for x in _plans(EASY) if x.kind == "bme"]
    real = [x for x in _plans(REALISTIC) if x.kind == "bme"]
    assert all(x.contrast == 0 and x.stir >= 0.5 for x in easy)
    faint = [x for x in real if x.contrast > 0]
    assert all(0.25 <= x.contrast <= 0.4 and 0.75 <= x.t1_factor <= 0.9 for x in faint)
    assert 0.7 < len(faint) / len(real) < 0.9  # 20% stay intense
    assert min(x.half_extent_mm for x in real) < 3.0 <= min(x.half_extent_mm for x in easy)


def test_realistic_lesions_sit_anywhere_along_the_arc_and_spill_over_quadrant_boundaries() -> None:
    easy = [x.centre_frac for x in _plans(EASY) if x.quadrant]
    real = [x.centre_frac for x in _plans(REALISTIC) if x.quadrant]
    assert min(abs(c - 0.5) for c in easy) >= 0.15
    assert min(abs(c - 0.5) for c in real) < 0.02 and min(real) < 0.05 and max(real) > 0.95


@pytest.mark.parametrize("spill", [False, True])
def test_a_lesion_across_the_quadrant_boundary_is_labelled_where_it_spills(spill: bool) -> None:
    rng = np.random.default_rng(31)
    params = sample_mri_params(rng, REALISTIC)
    k = params.n_slices // 2
    bme = LesionSpec(
        "bme", "left", "iliac_upper", (k,), 0.5, 6.0, 8.0, contrast=0.35, t1_factor=0.8, spill=spill
    )
    _, _, records = render_clean(params, mri_geometry(params), [bme], rng)
    labels = next(r for r in records if r.slice_index == k and r.joint == "left")
    assert labels.quadrants["iliac_upper"]["bme"] == 1
    assert labels.quadrants["iliac_lower"]["bme"] == int(spill)
    assert labels.quadrants["sacral_upper"]["bme"] == labels.quadrants["sacral_lower"]["bme"] == 0


def test_partial_volume_and_ghosting_keep_the_signal_where_the_anatomy_is() -> None:
    image = np.zeros((3, 8, 8), np.float32)
    image[1, 2, 2] = 1.0
    mixed = partial_volume(image, 0.2)
    assert mixed[1, 2, 2] == pytest.approx(0.6) and mixed[0, 2, 2] == pytest.approx(0.2)
    assert mixed.sum() == pytest.approx(image.sum())
    ghosted = ghosting(image, 0.1)
    assert ghosted[1, 2, 2] == pytest.approx(1.0)
    assert ghosted[1, 4, 2] == pytest.approx(0.06) and ghosted[1, 6, 2] == pytest.approx(0.04)
    assert partial_volume(image, 0.0) is image and ghosting(image, 0.0) is image


def test_realistic_ct_grades_are_imbalanced_and_normal_joints_carry_normal_variants() -> None:
    rng = np.random.default_rng(9)
    easy = Counter(g for _ in range(400) for g in sample_ct_params(rng, d=EASY).grades.values())
    params = [sample_ct_params(rng, d=REALISTIC) for _ in range(400)]
    real = Counter(g for p in params for g in p.grades.values())
    assert max(easy.values()) / min(easy.values()) < 1.4
    assert 0.30 < real[0] / 800 < 0.40 and 0.06 < real[4] / 800 < 0.14
    normal = [p.variants[j] for p in params for j in p.grades if p.grades[j] <= 1]
    share = np.mean([v["normal_variant_sclerosis"] for v in normal])
    assert 0.77 < share < 0.89
    assert not any(
        p.variants[j]["normal_variant_sclerosis"] for p in params for j in p.grades if p.grades[j] >= 2
    )
    assert {p.slice_mm for p in params} == {1.0, 1.5, 2.0}
    # grades overlap through the latent severity: some grade-1 joints are more severe than some grade-2 joints
    g1 = [p.severity[j] for p in params for j in p.grades if p.grades[j] == 1]
    g2 = [p.severity[j] for p in params for j in p.grades if p.grades[j] == 2]
    assert max(g1) > min(g2)


def test_realistic_ct_covers_the_same_height_with_thicker_slices() -> None:
    phantom = make_ct_phantom(study_rng(3, "ct", 0), {"left": 0, "right": 2}, REALISTIC)
    g = phantom.geometry
    assert g.n_slices * g.spacing_mm == pytest.approx(96.0, abs=1.0)
    assert phantom.hu.shape == (g.n_slices, 256, 256)
    assert (
        phantom.params.pixel_mm != 0.7 or phantom.params.slice_mm != 1.0 or phantom.params.psf_fwhm_mm != 1.0
    )


def test_the_manifest_and_truth_record_the_difficulty(tmp_path: Path) -> None:
    manifest = generate(tmp_path, n_mri=1, n_ct=0, seed=4, workers=1, level="realistic")
    assert manifest["arguments"]["difficulty"] == "realistic"
    assert manifest["difficulty"]["name"] == "realistic" and manifest["difficulty"]["snr"] == (4.0, 10.0)
    truth = json.loads((tmp_path / "mri-0000" / "truth.json").read_text())
    assert truth["parameters"]["difficulty"] == "realistic"
