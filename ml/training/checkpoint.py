"""Checkpoints: safetensors weights, a torch.save'd state side file and a JSON model card.

Layout of a checkpoint folder (every file written to a temporary name, then ``os.replace``d)::

    epoch-0003.safetensors     weights after the last finished epoch
    epoch-0003.state.pt        optimizer, scheduler, RNG, epoch, best metric, history
    best-0002.safetensors      weights of the best epoch so far
    card.json                  model card; its "checkpoint" entry names the three files above

``card.json`` is replaced last, so it always points at a complete set: a run killed at any moment resumes
from the previous epoch. Stale epoch files are removed after the card moves on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ml.data.files import write_atomically

CARD_NAME = "card.json"


def code_version() -> str:
    """Return ``git rev-parse HEAD`` of the source tree, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temp file over ``path`` atomically (``ml.data.files``): a full
    disk raises DiskFull naming the file, and leaves no partial file; the card still names the last full set."""
    write_atomically(path, write, what="checkpoint file")


def plain_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detach, move to CPU and un-share tensors so safetensors can write them."""
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in state.items()}


def save_weights(
    path: Path, state: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """Write a state dict as safetensors, atomically."""
    tensors = plain_state_dict(state)
    _atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def save_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically (UTF-8, indented, keys sorted)."""

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")

    _atomic_write(path, write)


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """torch.save a training-state dict atomically."""
    _atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def load_state(path: Path) -> dict[str, Any]:
    """Load a training-state dict written by :func:`save_state` (weights_only, no pickle code)."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the model card of a checkpoint folder; raises FileNotFoundError when there is none."""
    card: dict[str, Any] = json.loads((Path(directory) / CARD_NAME).read_text(encoding="utf-8"))
    return card


def make_card(
    *,
    model_kind: str,
    config: Mapping[str, Any],
    history: list[dict[str, float]],
    best_metric: float | None,
    best_epoch: int | None,
    data_snapshot_id: str | None,
    consensus_run_id: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a model card dict (code version, torch version and creation time filled in)."""
    return {
        "model_kind": model_kind,
        "config": dict(config),
        "metrics_history": history,
        "best_metric": best_metric,
        "best_epoch": best_epoch,
        "data_snapshot_id": data_snapshot_id,
        "consensus_run_id": consensus_run_id,
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
    }


def write_epoch_checkpoint(
    directory: Path,
    *,
    epoch: int,
    weights: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    card: dict[str, Any],
    best_weights: Mapping[str, torch.Tensor] | None,
) -> None:
    """Write one epoch's files, then the card that points at them, then remove stale files.

    ``best_weights`` None keeps the previous best file (the card's ``checkpoint.best`` entry). When a write fails
    (a full disk: DiskFull) the files of this epoch written so far are removed again, and the card still names
    the previous epoch's complete set.
    """
    directory.mkdir(parents=True, exist_ok=True)
    previous = _pointer(directory)
    tag = f"{epoch:04d}"
    files = {"weights": f"epoch-{tag}.safetensors", "state": f"epoch-{tag}.state.pt"}
    meta = {"epoch": str(epoch), "model_kind": str(card.get("model_kind", ""))}
    try:
        save_weights(directory / files["weights"], weights, meta)
        save_state(directory / files["state"], state)
        if best_weights is not None:
            files["best"] = f"best-{tag}.safetensors"
            save_weights(directory / files["best"], best_weights, meta)
        elif previous.get("best"):
            files["best"] = previous["best"]
        save_json(directory / CARD_NAME, {**card, "checkpoint": {"epoch": epoch, **files}})
    except BaseException:
        for name in set(files.values()) - set(previous.values()):
            (directory / name).unlink(missing_ok=True)
        raise
    keep = set(files.values())
    for name in previous.values():
        if isinstance(name, str) and name not in keep:
            (directory / name).unlink(missing_ok=True)


def _pointer(directory: Path) -> dict[str, Any]:
    try:
        pointer: dict[str, Any] = read_card(directory).get("checkpoint", {})
    except FileNotFoundError:
        return {}
    return {k: v for k, v in pointer.items() if k != "epoch"}


def load_checkpoint(
    directory: str | os.PathLike[str], *, which: str = "best"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, card)`` of a checkpoint folder.

    ``which`` is ``"best"`` (falls back to the last weights when no best was recorded) or ``"last"``.
    Raises FileNotFoundError when the folder holds no card.
    """
    directory = Path(directory)
    card = read_card(directory)
    pointer = card.get("checkpoint", {})
    name = pointer.get("best") if which == "best" else None
    name = name or pointer.get("weights")
    if not name:
        raise FileNotFoundError(f"{directory} has a card but no weights")
    return load_file(str(directory / name)), card


def save_model(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    *,
    model_kind: str,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    data_snapshot_id: str | None = None,
    consensus_run_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a stand-alone model (weights + card, no training state) that :func:`load_checkpoint` reads."""
    directory = Path(directory)
    module = getattr(model, "module", model)
    module = getattr(module, "_orig_mod", module)
    history = [dict(metrics)] if metrics else []
    card = make_card(
        model_kind=model_kind,
        config=config or {},
        history=history,
        best_metric=None,
        best_epoch=None,
        data_snapshot_id=data_snapshot_id,
        consensus_run_id=consensus_run_id,
        extra=extra,
    )
    save_weights(directory / "model.safetensors", module.state_dict(), {"model_kind": model_kind})
    save_json(directory / CARD_NAME, {**card, "checkpoint": {"weights": "model.safetensors"}})
    return directory


def copy_model(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy a checkpoint's best weights and card to ``target`` as a stand-alone model (no training state).

    The card is written last, so ``target`` is complete once it has one; a complete ``target`` is kept
    as it is (idempotent). Raises FileNotFoundError when ``source`` holds no model.
    """
    target = Path(target)
    if (target / CARD_NAME).exists():
        return target
    state, card = load_checkpoint(source)
    save_weights(target / "model.safetensors", state, {"model_kind": str(card.get("model_kind", ""))})
    card = {**card, "checkpoint": {"weights": "model.safetensors"}, "copied_from": str(source)}
    save_json(target / CARD_NAME, card)
    return target
