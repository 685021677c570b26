"""Lesion network and confusion layers: shapes, gradients, loss decrease per target mode, trace term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.lesions.crops import CropConfig
from ml.lesions.infer import LesionPredictor
from ml.lesions.labels import OUTPUT_NAMES, OUTPUTS
from ml.lesions.model import LesionLoss, LesionModel, LesionModelConfig, ReaderConfusion
from ml.lesions.train import LesionDataset
from ml.training import save_model

TINY = LesionModelConfig(size_px=16, n_slices=3, channels=(4, 8, 8, 8), dropout=0.0)


def _batch(n: int = 4, readers: int = 2, sessions: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    truth = (torch.rand(n, 14, generator=g) < 0.4).float()
    noisy = torch.where(
        torch.rand(n, readers, sessions, 14, generator=g) < 0.9,
        truth[:, None, None],
        1 - truth[:, None, None],
    )
    noisy[:, 1, 1, :3] = -1  # missing readings
    x = torch.rand(n, 2, 3, 16, 16, generator=g) + truth[:, :2, None, None, None]
    return {"input": x, "majority": truth, "soft": truth * 0.8 + 0.1, "readers": noisy.long()}


def test_output_order_matches_scheme_names() -> None:
    assert (
        len(OUTPUTS) == 14
        and OUTPUT_NAMES[0] == "bme/iliac_upper"
        and OUTPUT_NAMES[4] == "erosion/iliac_upper"
    )
    assert OUTPUT_NAMES[8] == "fat/iliac_upper" and OUTPUT_NAMES[12:] == (
        "sclerosis/joint",
        "ankylosis/joint",
    )


@pytest.mark.parametrize(
    ("mode", "head"),
    [
        ("majority", "flatten"),
        ("soft", "flatten"),
        ("readers", "flatten"),
        ("soft", "quadrant"),
        ("readers", "quadrant+map"),
    ],
)
def test_shapes_gradients_and_a_few_steps_reduce_the_loss(mode: str, head: str) -> None:
    torch.manual_seed(0)
    extra: dict[str, object] = {}
    if head.startswith("quadrant"):
        extra = {"head": "quadrant", "strides": (2, 2, 1, 1), "joint_map": head.endswith("map")}
    config = LesionModelConfig(**{**TINY.to_dict(), "target": mode, "n_readers": 2, "n_sessions": 2, **extra})
    model, loss_fn, batch = LesionModel(config), LesionLoss(mode), _batch()
    out = model(batch["input"])
    assert out["logits"].shape == (4, 14)
    if mode == "readers":
        assert out["reader_prob"].shape == (4, 2, 2, 14)
    first = loss_fn(out, batch)
    first.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(12):
        opt.zero_grad()
        loss = loss_fn(model(batch["input"]), batch)
        loss.backward()
        opt.step()
    assert float(loss_fn(model(batch["input"]), batch).detach()) < float(first.detach())


def test_confusion_layers_start_near_identity_and_stay_row_stochastic() -> None:
    layer = ReaderConfusion(3, 2)
    reader, session, composed = layer.matrices()
    assert torch.allclose(composed.sum(-1), torch.ones(()))
    assert (reader.diagonal(dim1=-2, dim2=-1) > 0.9).all() and (
        session.diagonal(dim1=-2, dim2=-1) > 0.99
    ).all()
    p = torch.tensor([[0.0] * 7 + [1.0] * 7])
    assert torch.allclose(layer(p)[0, 0, 0], p[0], atol=0.07)  # near-identity readers repeat the truth
    opt = torch.optim.SGD(layer.parameters(), lr=5.0)
    before = float(layer.trace().detach())
    for _ in range(20):  # the trace term alone pushes the matrices away from the identity
        opt.zero_grad()
        layer.trace().backward()
        opt.step()
    reader, session, composed = layer.matrices()
    assert float(layer.trace().detach()) < before
    for m in (reader, session, composed):
        assert torch.allclose(m.sum(-1), torch.ones(()), atol=1e-6) and (m >= 0).all()


def test_reader_loss_ignores_missing_readings() -> None:
    torch.manual_seed(0)
    config = LesionModelConfig(**{**TINY.to_dict(), "target": "readers", "n_readers": 2, "n_sessions": 2})
    model, batch = LesionModel(config), _batch()
    out = model(batch["input"])
    loss_fn = LesionLoss("readers", trace_weight=0.0)
    changed = dict(batch, readers=batch["readers"].clone())
    changed["readers"][:, 1, 1, :3] = -1  # already missing: nothing changes
    assert torch.allclose(loss_fn(out, batch), loss_fn(out, changed))
    all_missing = dict(batch, readers=torch.full_like(batch["readers"], -1))
    assert float(loss_fn(out, all_missing)) == 0.0


def test_checkpoint_save_load_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LesionModel(TINY).eval()
    save_model(
        tmp_path,
        model,
        model_kind="lesions",
        extra={"model_config": TINY.to_dict(), "crop_config": CropConfig(size_px=16, n_slices=3).to_dict()},
    )
    predictor = LesionPredictor.from_checkpoint(tmp_path, device="cpu")
    x = _batch()["input"]
    with torch.no_grad():
        expected = torch.sigmoid(model(x)["logits"]).double().numpy()
    np.testing.assert_array_equal(predictor.predict_crops(x.numpy()), expected)
    assert predictor.crop_config == CropConfig(size_px=16, n_slices=3)


def test_quadrant_head_reads_each_quadrant_from_its_block() -> None:
    """A feature in one quadrant block changes only that quadrant's bme/erosion/fat logits (per slice; the
    convolutions are bypassed, as their instance norm spreads any change over the whole map)."""
    torch.manual_seed(0)
    config = LesionModelConfig(
        size_px=16, width_px=12, n_slices=1, channels=(2,), strides=(1,), head="quadrant", dropout=0.0
    )
    net = LesionModel(config).net.slice_net.eval()
    net.features = torch.nn.Identity()
    base = torch.zeros(1, 2, 16, 12)
    spot = base.clone()
    spot[0, :, 1:3, 9:11] = 5.0  # upper rows, iliac (right) columns, away from the block edges
    with torch.no_grad():
        delta = (net(spot) - net(base))[0]
    changed = {OUTPUT_NAMES[i] for i in range(12) if abs(float(delta[i])) > 1e-6}
    assert changed <= {"bme/iliac_upper", "erosion/iliac_upper", "fat/iliac_upper"} and changed


def test_flips_move_the_targets_with_the_quadrants() -> None:
    """A bright block in the iliac-upper quarter labelled erosion/iliac_upper: after any flip, the label
    follows the block to the quarter it now lies in (readers' readings too)."""
    crop = np.zeros((1, 2, 2, 16, 12), np.float32)
    crop[0, :, :, 2:6, 8:10] = 1.0  # upper rows, iliac (right) columns; stays there under 2 px shifts
    target = np.zeros((1, 14), np.float32)
    target[0, OUTPUT_NAMES.index("erosion/iliac_upper")] = 1.0
    readers = np.broadcast_to(target.astype(np.int64)[:, None, None], (1, 2, 1, 14)).copy()
    data = LesionDataset(
        crop, {"majority": target, "readers": readers}, augment=True, flip_halves=True, flip_sides=True
    )
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        item = data[0]
        x = item["input"][0, 0]
        upper = bool(x[:8].mean() > x[8:].mean())
        iliac = bool(x[:, 6:].mean() > x[:, :6].mean())
        name = f"erosion/{'iliac' if iliac else 'sacral'}_{'upper' if upper else 'lower'}"
        assert item["majority"][OUTPUT_NAMES.index(name)] == 1.0 and item["majority"].sum() == 1.0
        assert item["readers"][1, 0, OUTPUT_NAMES.index(name)] == 1
        seen.add(name)
    assert len(seen) == 4


def test_confusion_layers_stay_at_their_start_during_the_warmup() -> None:
    torch.manual_seed(0)
    config = LesionModelConfig(
        **{
            **TINY.to_dict(),
            "target": "readers",
            "n_readers": 2,
            "n_sessions": 2,
            "confusion_warmup_steps": 3,
        }
    )
    model, loss_fn, batch = LesionModel(config), LesionLoss("readers", trace_weight=0.1), _batch()
    assert model.confusion is not None
    start = model.confusion.reader_logits.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(5):
        opt.zero_grad()
        loss_fn(model(batch["input"]), batch).backward()
        opt.step()
        moved = float((model.confusion.reader_logits - start).abs().max().detach())
        assert (moved == 0.0) == (step < 3), (step, moved)
