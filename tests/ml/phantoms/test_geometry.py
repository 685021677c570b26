"""Slice geometry: ImagePositionPatient steps along the normal, InstanceNumber order, joint sides from x."""

from __future__ import annotations

import numpy as np
import pydicom

from ml.data.geometry import centred_geometry
from ml.data.truth import load_truth


def _series(folder):
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]


def test_pixel_patient_round_trip() -> None:
    g = centred_geometry(
        rows=8,
        cols=10,
        n_slices=5,
        pixel_mm=0.8,
        slice_thickness_mm=3.0,
        spacing_mm=3.0,
        row_dir=np.array([1.0, 0, 0]),
        col_dir=np.array([0, 0.2, -1.0]),
        centre=np.zeros(3),
    )
    px = np.array([[1.5, 2.0], [9.0, 7.0]])
    xyz = g.px_to_patient(np.array([0, 4]), px)
    back, k = g.patient_to_px(xyz)
    np.testing.assert_allclose(back, px, atol=1e-9)
    np.testing.assert_allclose(k, [0, 4], atol=1e-9)
    np.testing.assert_allclose(g.px_to_patient(2, np.array([4.5, 3.5])), 0.0, atol=1e-9)  # centre voxel


def test_ipp_steps_along_normal_in_instance_order(written) -> None:
    for folder in ("mri-0004/T1", "mri-0004/STIR", "ct-0000/CT"):
        datasets = _series(written["root"] / folder)
        iop = np.asarray(datasets[0].ImageOrientationPatient, float)
        normal = np.cross(iop[:3], iop[3:])
        ipp = np.array([ds.ImagePositionPatient for ds in datasets], float)
        steps = np.diff(ipp, axis=0)
        spacing = float(datasets[0].SpacingBetweenSlices)
        np.testing.assert_allclose(steps, np.tile(normal * spacing, (len(steps), 1)), atol=2e-3)
        assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))
        assert all(np.allclose(ds.ImageOrientationPatient, iop) for ds in datasets)


def test_mri_orientation_is_semicoronal_and_ct_axial(written) -> None:
    t1 = pydicom.dcmread(written["root"] / "mri-0004/T1/0001.dcm")
    iop = np.asarray(t1.ImageOrientationPatient, float)
    assert np.allclose(iop[:3], [1, 0, 0]) and iop[5] < -0.9  # rows toward patient left, columns downward
    ct = pydicom.dcmread(written["root"] / "ct-0000/CT/0001.dcm")
    assert np.allclose(ct.ImageOrientationPatient, [1, 0, 0, 0, 1, 0])


def test_left_joint_lies_at_positive_patient_x(written) -> None:
    truth = load_truth(written["root"] / "mri-0004")
    midline_x = truth.slice_geometry().px_to_patient(0, np.array([(truth.geometry["cols"] - 1) / 2, 0.0]))[0]
    for record in truth.slices:
        xs = record.polyline_mm()[:, 0]
        assert (xs > midline_x).all() if record.joint == "left" else (xs < midline_x).all()


def test_joint_curves_run_superolateral_to_inferomedial(written) -> None:
    truth = load_truth(written["root"] / "mri-0004")
    g = truth.slice_geometry()
    for record in truth.slices:
        start, end = np.asarray(record.start_mm), np.asarray(record.end_mm)
        superior = -np.asarray(g.col_dir)  # image "up"
        assert (start - end) @ superior > 0
        lateral = 1.0 if record.joint == "left" else -1.0
        assert lateral * (start[0] - end[0]) > 0


def test_truth_points_px_and_mm_agree(written) -> None:
    truth = load_truth(written["root"] / "mri-0004")
    g = truth.slice_geometry()
    record = truth.slices[5]
    np.testing.assert_allclose(
        g.px_to_patient(record.slice_index, record.polyline_px()), record.polyline_mm(), atol=5e-3
    )
