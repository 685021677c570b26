"""A checkpoint folder whose disk fills up: a clear error, no partial or orphaned file, the last checkpoint
still complete and loadable (ENOSPC simulated at the boundary: the libraries' file writes)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.data.files import DiskFull, write_atomically
from ml.training import checkpoint as ckpt


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((64, 64), value)}


def _full_disk_after(nbytes: int) -> Any:
    """A stand-in for a library's file write: writes ``nbytes`` of the file, then the disk is full."""

    def write(_data: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        with open(path, "wb") as handle:
            handle.write(b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def _epoch(directory: Path, epoch: int, value: float) -> None:
    ckpt.write_epoch_checkpoint(
        directory,
        epoch=epoch,
        weights=_weights(value),
        state={"epochs_completed": epoch},
        card={"model_kind": "test"},
        best_weights=_weights(value),
    )


@pytest.mark.parametrize("failing", ["weights", "state"])
def test_a_full_disk_mid_checkpoint_leaves_the_last_complete_one_and_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    _epoch(tmp_path, 1, 1.0)
    before = sorted(p.name for p in tmp_path.iterdir())
    if failing == "weights":
        monkeypatch.setattr(ckpt, "save_file", lambda t, path, metadata=None: _full_disk_after(4096)(t, path))
    else:
        monkeypatch.setattr(torch, "save", _full_disk_after(4096))

    with pytest.raises(DiskFull) as caught:
        _epoch(tmp_path, 2, 2.0)

    message = str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert "no space left on the device" in message and str(tmp_path) in message
    assert "checkpoint file epoch-0002" in message and "nothing partial was kept" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary, no orphan of epoch 2
    monkeypatch.undo()
    weights, card = ckpt.load_checkpoint(tmp_path, which="last")
    assert card["checkpoint"]["epoch"] == 1 and torch.equal(weights["w"], _weights(1.0)["w"])


def test_write_atomically_keeps_the_previous_file_when_the_disk_fills(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def half_then_full(tmp: str) -> None:
        Path(tmp).write_text("new, but only half of i")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match=r"the snapshot manifest manifest\.json could not be written"):
        write_atomically(target, half_then_full, what="snapshot manifest")
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"] and target.read_text() == "old"
    with pytest.raises(PermissionError):  # other errors are raised as they are (and cleaned up too)
        write_atomically(target, lambda tmp: (_ for _ in ()).throw(PermissionError("read-only")))
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
