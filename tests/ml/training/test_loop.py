"""Training loop: loss goes down, checkpoints round-trip, resume reproduces the uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ml.training import TrainConfig, copy_model, fit, load_checkpoint, save_model


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(64, 1, generator=g)
    return TensorDataset(x, y)


def _model() -> nn.Module:
    torch.manual_seed(7)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))


def _config(tmp: Path | None, **kw: object) -> TrainConfig:
    base: dict[str, object] = {"epochs": 6, "lr": 0.02, "batch_size": 8, "seed": 3, "device": "cpu"}
    base.update(kw)
    return TrainConfig(checkpoint_dir=str(tmp) if tmp else None, **base)  # type: ignore[arg-type]


def test_fit_reduces_loss_and_reports_progress() -> None:
    calls: list[tuple[int, int]] = []
    result = fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(None),
        progress=lambda e, s, loss, m: calls.append((e, s)),
    )
    assert result.stopped == "completed" and result.epochs_completed == 6
    assert result.history[-1]["val_loss"] < 0.5 * result.history[0]["val_loss"]
    assert (5, -1) in calls and (0, 0) in calls


def test_checkpoint_roundtrip_gives_identical_outputs(tmp_path: Path) -> None:
    result = fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(tmp_path, epochs=2),
        model_kind="toy",
        data_snapshot_id="snap-1",
        consensus_run_id="42",
    )
    state, card = load_checkpoint(tmp_path, which="last")
    fresh = _model()
    fresh.load_state_dict(state)
    fresh.eval()
    result.model.eval()
    x = torch.randn(5, 4)
    assert torch.equal(fresh(x), result.model(x))
    assert card["model_kind"] == "toy" and card["data_snapshot_id"] == "snap-1"
    assert card["consensus_run_id"] == "42" and len(card["metrics_history"]) == 2
    assert card["torch_version"] == torch.__version__ and card["code_version"]
    assert json.loads((tmp_path / "card.json").read_text())["config"]["epochs"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("epoch-")) == [
        "epoch-0002.safetensors",
        "epoch-0002.state.pt",
    ]


def test_save_model_then_load(tmp_path: Path) -> None:
    model = _model()
    save_model(tmp_path, model, model_kind="toy", metrics={"rmse": 1.0})
    state, card = load_checkpoint(tmp_path)
    assert card["model_kind"] == "toy"
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_copy_model_takes_the_best_weights_and_card_only(tmp_path: Path) -> None:
    fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(tmp_path / "run", epochs=3),
        model_kind="toy",
    )
    best, card = load_checkpoint(tmp_path / "run")
    copy_model(tmp_path / "run", tmp_path / "copy")
    state, copied = load_checkpoint(tmp_path / "copy")
    assert all(torch.equal(state[k], v) for k, v in best.items())
    assert copied["model_kind"] == "toy" and copied["created"] == card["created"]
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["card.json", "model.safetensors"]
    copy_model(tmp_path / "elsewhere", tmp_path / "copy")  # a complete copy is kept as it is
    with pytest.raises(FileNotFoundError):
        copy_model(tmp_path / "missing", tmp_path / "other")


def _step(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.StepLR:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)


def test_interrupted_then_resumed_run_matches_uninterrupted(tmp_path: Path) -> None:
    full = fit(
        _model(), nn.functional.mse_loss, _data(), _data(), _config(tmp_path / "a"), scheduler_factory=_step
    )
    steps = {"n": 0}

    def cancel() -> bool:
        steps["n"] += 1
        return steps["n"] == 20  # mid-epoch 3 (8 steps per epoch)

    part = fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(tmp_path / "b"),
        should_stop=cancel,
        scheduler_factory=_step,
    )
    assert part.stopped == "cancelled" and part.epochs_completed == 2
    resumed = fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(tmp_path / "b"),
        resume=True,
        scheduler_factory=_step,
    )
    assert resumed.stopped == "completed" and resumed.epochs_completed == 6
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=1e-6, rtol=0)
    assert [h["val_loss"] for h in resumed.history] == pytest.approx([h["val_loss"] for h in full.history])
    again = fit(_model(), nn.functional.mse_loss, _data(), _data(), _config(tmp_path / "b"), resume=True)
    assert again.epochs_completed == 6  # a finished run does not train again


def test_early_stopping_on_a_metric_that_never_improves() -> None:
    result = fit(
        _model(),
        nn.functional.mse_loss,
        _data(),
        _data(),
        _config(None, epochs=20, patience=2, metric="const", mode="max"),
        evaluate_fn=lambda model, data, device: {"const": 1.0},
    )
    assert result.stopped == "early_stopping" and result.epochs_completed == 3
    assert result.best_epoch == 0 and result.best_metric == 1.0


def test_missing_metric_and_bad_device_raise() -> None:
    with pytest.raises(KeyError):
        fit(_model(), nn.functional.mse_loss, _data(), None, _config(None, epochs=1, metric="auc"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            fit(_model(), nn.functional.mse_loss, _data(), None, _config(None, epochs=1, device="cuda"))


def test_without_validation_data_no_validation_loss_is_reported() -> None:
    """The runs' validation loss equalled the training loss to every digit: without validation data the loop
    reported the training loss as ``val_loss`` (issue 15, finding 10). Now it reports none, and selects the
    best epoch on the training loss; with validation data the two differ."""
    alone = fit(_model(), nn.functional.mse_loss, _data(), None, _config(None, epochs=3))
    assert all("val_loss" not in row for row in alone.history)
    assert alone.best_metric == min(row["train_loss"] for row in alone.history)
    g = torch.Generator().manual_seed(9)
    held_out = TensorDataset(torch.randn(16, 4, generator=g), torch.randn(16, 1, generator=g))
    both = fit(_model(), nn.functional.mse_loss, _data(), held_out, _config(None, epochs=3))
    assert all(abs(row["val_loss"] - row["train_loss"]) > 1e-4 for row in both.history)
