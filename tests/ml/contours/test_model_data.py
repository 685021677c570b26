"""Network shapes and gradients, crops and their geometry, the joint locator and the npz format."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from ml.contours.data import ContourDataset, crop_geometry, samples_from_arrays
from ml.contours.field import gaussian_heatmap
from ml.contours.files import load_folder, save_npz_scan
from ml.contours.locate import _shift_columns, locate_joints
from ml.contours.model import ContourLoss, ContourModelConfig, ContourNet, focal_heatmap_loss, unit_field
from ml.contours.synthetic import toy_scan

SMALL = ContourModelConfig(width=4, crop_mm=32.0, pixel_mm=1.0)


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    return toy_scan(1, n_slices=2, shape=(64, 112), pixel_mm=0.8)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_model_shapes_and_finite_gradients(spatial_dims: int) -> None:
    config = ContourModelConfig(width=4, crop_mm=32.0, pixel_mm=1.0, spatial_dims=spatial_dims, in_channels=2)
    model = ContourNet(config)
    shape = (2, 2) + (32,) * spatial_dims
    out = model(torch.randn(shape))
    assert out.shape == (2, 4) + (32,) * spatial_dims
    assert torch.allclose(unit_field(out).norm(dim=1), torch.ones(1), atol=1e-4)
    if spatial_dims == 2:
        targets = {
            "field": unit_field(torch.randn(2, 2, 32, 32)),
            "heatmap": torch.rand(2, 2, 32, 32),
            "weight": torch.ones(2, 32, 32),
        }
        ContourLoss()(out, targets).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("heatmap_loss", ["focal", "mse"])
def test_a_few_steps_reduce_the_loss(scan, heatmap_loss: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = dataclasses.replace(SMALL, heatmap_loss=heatmap_loss)
    data = ContourDataset(
        samples_from_arrays(scan.images, scan.polylines, scan.pixel_spacing, config), config
    )
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    model, loss_fn = ContourNet(config), ContourLoss(heatmap_loss=heatmap_loss)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = loss_fn(model(batch["input"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_crop_geometry_roundtrip_and_mirroring() -> None:
    geom = crop_geometry([50.0, 40.0], [0.8, 0.5], SMALL, mirror=True)
    centre = (SMALL.crop_px - 1) / 2
    assert geom.to_slice([[centre, centre]])[0] == pytest.approx([50.0, 40.0])
    # one crop pixel = 1 mm = 2 slice columns, mirrored; = 1.25 slice rows
    assert geom.to_slice([[centre + 1, centre + 1]])[0] == pytest.approx([48.0, 41.25])
    pts = np.array([[3.0, 4.0], [10.0, -2.0]])
    assert geom.to_crop(geom.to_slice(pts)) == pytest.approx(pts)


def test_samples_mirror_the_right_joint_so_both_look_alike(scan) -> None:  # type: ignore[no-untyped-def]
    samples = samples_from_arrays(scan.images, scan.polylines, scan.pixel_spacing, SMALL)
    assert [(s.slice_index, s.side) for s in samples] == sorted(scan.polylines)
    for s in samples:
        assert s.image.shape == (1, 32, 32) and s.polyline is not None
        # every joint runs superolateral -> inferomedial; after mirroring, lateral is +x in the crop
        assert s.polyline[0, 0] > s.polyline[-1, 0] and s.polyline[0, 1] < s.polyline[-1, 1]
        line = s.geometry.to_slice(s.polyline)
        assert line == pytest.approx(scan.polylines[(s.slice_index, s.side)])
    item = ContourDataset(samples, SMALL)[0]
    assert item["field"].shape == (2, 32, 32) and item["heatmap"].shape == (2, 32, 32)
    assert item["weight"].shape == (32, 32) and item["input"].dtype == torch.float32


def test_locate_finds_both_joints_with_the_patient_side(scan) -> None:  # type: ignore[no-untyped-def]
    for s in range(scan.images.shape[0]):
        found = locate_joints(scan.images[s, 0], scan.pixel_spacing, scan.image_orientation)
        for side, xy in found.items():
            line = scan.polylines[(s, side)]
            assert np.linalg.norm(xy - (line.min(0) + line.max(0)) / 2) < 6.0
    flipped = locate_joints(scan.images[0, 0], scan.pixel_spacing, [-1, 0, 0, 0, 0, -1])
    assert flipped["left"][0] < flipped["right"][0]  # columns now run towards the patient's right


def test_npz_roundtrip(tmp_path: Path, scan) -> None:  # type: ignore[no-untyped-def]
    save_npz_scan(tmp_path / "a.npz", scan)
    (loaded,) = load_folder(tmp_path)
    assert loaded.scan_id == "a" and np.array_equal(loaded.images, scan.images)
    assert set(loaded.polylines) == set(scan.polylines)
    assert np.allclose(loaded.polylines[(1, "right")], scan.polylines[(1, "right")])
    assert np.allclose(loaded.image_position, scan.image_position)
    with pytest.raises(FileNotFoundError):
        load_folder(tmp_path / "empty")


def test_focal_loss_prefers_the_true_peak_over_an_echo() -> None:
    target = torch.from_numpy(gaussian_heatmap((32, 32), (10.0, 20.0), 2.0))[None, None]
    right = torch.logit(target.clamp(0.01, 0.99))
    echo = torch.maximum(
        right,
        torch.logit(
            0.8 * torch.from_numpy(gaussian_heatmap((32, 32), (20.0, 5.0), 2.0))[None, None].clamp(0.01, 0.99)
        ),
    )
    assert focal_heatmap_loss(right, target) < 0.5 * focal_heatmap_loss(echo, target)
    with pytest.raises(ValueError):
        ContourModelConfig(heatmap_loss="l1")


@pytest.mark.parametrize("d", [1, 3, -2, -5, 40])
def test_the_locator_s_column_shift_is_ndimage_s_order_0_shift(d: int) -> None:
    image = np.random.default_rng(d + 10).random((7, 12))
    expected = ndimage.shift(image, (0, d), order=0, mode="nearest")
    assert np.array_equal(_shift_columns(image, d), expected)
