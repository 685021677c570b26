"""The one training loop: seeded, resumable, early-stopping, bf16/compile on CUDA, DDP under torchrun.

Batches are either ``(inputs, targets)`` pairs or mappings with an ``"input"`` key (the whole mapping is
then the target, so a loss can read several target tensors and masks). ``model(inputs)`` gives the
outputs and ``loss_fn(outputs, targets)`` a scalar tensor.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ml.training import checkpoint as ckpt
from ml.training.config import TrainConfig
from ml.training.distributed import DistInfo, any_rank, barrier, init_distributed
from ml.training.seeding import rng_state, seed_everything, set_rng_state

LossFn = Callable[[Any, Any], torch.Tensor]
OptimizerFactory = Callable[[nn.Module, TrainConfig], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, TrainConfig], Any]
EvaluateFn = Callable[[nn.Module, Any, torch.device], Mapping[str, float]]
# progress(epoch, step, loss, metrics): after every training step with metrics {}, and once more after
# each epoch's checkpoint with step -1, the epoch's mean training loss and its metrics
ProgressFn = Callable[[int, int, float, Mapping[str, float]], None]
CancelFn = Callable[[], bool]
Stopped = Literal["completed", "early_stopping", "cancelled"]


def adamw_factory(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Default optimizer: AdamW with the config's lr and weight decay."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def resolve_device(kind: str, dist_info: DistInfo | None = None) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda"`` to a torch device; raises RuntimeError for cuda without a GPU."""
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", dist_info.local_rank if dist_info else 0)
    return torch.device("cpu")


def memory_format(model: nn.Module) -> torch.memory_format:
    """The channels-last format that suits ``model``: ``channels_last_3d`` when it has a 3-D convolution
    (``channels_last`` needs rank-4 weights and raises for Conv3d), else ``channels_last``."""
    if any(isinstance(m, nn.Conv3d | nn.ConvTranspose3d) for m in model.modules()):
        return torch.channels_last_3d
    return torch.channels_last


def move_to(obj: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move tensors nested in mappings, lists and tuples to ``device`` (asynchronously from pinned memory);
    with ``channels_last`` floating-point 4-D tensors become ``channels_last`` and 5-D ``channels_last_3d``."""
    if isinstance(obj, torch.Tensor):
        obj = obj.to(device, non_blocking=True)
        if channels_last and obj.is_floating_point() and obj.dim() in (4, 5):
            obj = obj.contiguous(
                memory_format=torch.channels_last if obj.dim() == 4 else torch.channels_last_3d
            )
        return obj
    if isinstance(obj, Mapping):
        return {k: move_to(v, device, channels_last) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(move_to(v, device, channels_last) for v in obj)
    return obj


def split_batch(batch: Any) -> tuple[Any, Any]:
    """Return ``(inputs, targets)`` of a pair or of a mapping with an ``"input"`` key."""
    if isinstance(batch, Mapping):
        return batch["input"], batch
    inputs, targets = batch
    return inputs, targets


@dataclass
class FitResult:
    """Outcome of :func:`fit`. ``model`` holds the last weights; ``best_state`` the best epoch's (CPU)."""

    model: nn.Module
    history: list[dict[str, float]]
    best_metric: float | None
    best_epoch: int | None
    epochs_completed: int
    stopped: Stopped
    best_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


class Trainer:
    """Hold the model, data, optimizer and bookkeeping of one run; :meth:`fit` runs it.

    ``train_data`` / ``val_data`` given as a torch ``Dataset`` are batched here (``config.batch_size``,
    a per-epoch seeded shuffle, a ``DistributedSampler`` for training under torchrun); any other
    iterable of batches is used as given and must be re-iterable (shard it yourself under DDP).
    Under torchrun (WORLD_SIZE > 1) the process group is joined, the model wrapped in
    DistributedDataParallel, and only rank 0 writes checkpoints; every rank evaluates the full
    validation data, so early-stopping decisions agree.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any] | Dataset[Any],
        val_data: Iterable[Any] | Dataset[Any] | None,
        config: TrainConfig,
        *,
        optimizer_factory: OptimizerFactory = adamw_factory,
        scheduler_factory: SchedulerFactory | None = None,
        evaluate_fn: EvaluateFn | None = None,
        progress: ProgressFn | None = None,
        should_stop: CancelFn | None = None,
        model_kind: str = "model",
        data_snapshot_id: str | None = None,
        consensus_run_id: str | None = None,
        card_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.dist = init_distributed(
            "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
        )
        self.device = resolve_device(config.device, self.dist)
        seed_everything(config.seed + self.dist.rank, deterministic=config.deterministic)
        # bf16 autocast, torch.compile and channels-last: on CUDA, or on the CPU when asked (tests)
        cuda_paths = self.device.type == "cuda" or config.cuda_paths_on_cpu
        self.amp = config.amp and cuda_paths
        self.channels_last = config.channels_last and cuda_paths
        self.raw_model = model.to(self.device)
        if self.channels_last:
            self.raw_model = self.raw_model.to(memory_format=memory_format(self.raw_model))  # type: ignore[call-overload]
        self.model: nn.Module = self.raw_model
        if self.dist.is_distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        if config.compile and cuda_paths:
            self.model = torch.compile(self.model, backend=config.compile_backend)  # type: ignore[assignment]
        self.loss_fn = loss_fn
        self.train_data, self.val_data = train_data, val_data
        self.optimizer = optimizer_factory(self.raw_model, config)
        self.scheduler = scheduler_factory(self.optimizer, config) if scheduler_factory else None
        self.evaluate_fn, self.progress, self.should_stop = evaluate_fn, progress, should_stop
        self.model_kind, self.card_extra = model_kind, dict(card_extra or {})
        self.data_snapshot_id, self.consensus_run_id = data_snapshot_id, consensus_run_id
        self.history: list[dict[str, float]] = []
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.start_epoch = 0
        self.finished: Stopped | None = None

    # -- data -------------------------------------------------------------------------------------
    def _batches(self, data: Iterable[Any] | Dataset[Any], epoch: int, train: bool) -> Iterator[Any]:
        if not isinstance(data, Dataset):
            return iter(data)
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        sampler: DistributedSampler[Any] | None = None
        if self.dist.is_distributed and train:
            sampler = DistributedSampler(
                data,
                num_replicas=self.dist.world_size,
                rank=self.dist.rank,
                shuffle=True,
                seed=self.config.seed,
            )
            sampler.set_epoch(epoch)
        loader = DataLoader(
            data,
            batch_size=self.config.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            generator=generator,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        return iter(loader)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- epochs -----------------------------------------------------------------------------------
    def train_one_epoch(self, epoch: int) -> float | None:
        """Run one pass over the training data; return the mean loss, or None when cancelled."""
        self.model.train()
        total, count = 0.0, 0
        for step, batch in enumerate(self._batches(self.train_data, epoch, train=True)):
            inputs, targets = move_to(split_batch(batch), self.device, self.channels_last)
            with self._autocast():
                loss = self.loss_fn(self.model(inputs), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            value = float(loss.detach().item())
            total, count = total + value, count + 1
            if self.progress:
                self.progress(epoch, step, value, {})
            if any_rank(bool(self.should_stop and self.should_stop()), self.dist, self.device):
                return None
        return total / max(count, 1)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Return validation metrics: ``val_loss`` plus whatever ``evaluate_fn`` reports."""
        if self.val_data is None:
            return {}
        self.model.eval()
        total, count = 0.0, 0
        with self._autocast():
            for batch in self._batches(self.val_data, 0, train=False):
                inputs, targets = move_to(split_batch(batch), self.device, self.channels_last)
                total += float(self.loss_fn(self.model(inputs), targets).item())
                count += 1
            metrics = {"val_loss": total / max(count, 1)}
            if self.evaluate_fn:
                metrics.update(
                    {
                        k: float(v)
                        for k, v in self.evaluate_fn(self.raw_model, self.val_data, self.device).items()
                    }
                )
        return metrics

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_metric is None:
            return True
        return value > self.best_metric if self.config.mode == "max" else value < self.best_metric

    # -- checkpoints ------------------------------------------------------------------------------
    def _card(self) -> dict[str, Any]:
        return ckpt.make_card(
            model_kind=self.model_kind,
            config=self.config.to_dict(),
            history=self.history,
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            data_snapshot_id=self.data_snapshot_id,
            consensus_run_id=self.consensus_run_id,
            extra=self.card_extra,
        )

    def _save(self, epochs_completed: int, best_changed: bool) -> None:
        directory = self.config.checkpoint_path
        if directory is None or not self.dist.is_main:
            return
        state = {
            "epochs_completed": epochs_completed,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "rng": rng_state(),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "finished": self.finished,
        }
        ckpt.write_epoch_checkpoint(
            directory,
            epoch=epochs_completed,
            weights=self.raw_model.state_dict(),
            state=state,
            card=self._card(),
            best_weights=self.best_state if best_changed else None,
        )

    def _restore(self) -> bool:
        directory = self.config.checkpoint_path
        if directory is None or not (directory / ckpt.CARD_NAME).exists():
            return False
        pointer = ckpt.read_card(directory).get("checkpoint", {})
        if "state" not in pointer:
            return False
        weights, _ = ckpt.load_checkpoint(directory, which="last")
        self.raw_model.load_state_dict(weights)
        state = ckpt.load_state(directory / pointer["state"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.start_epoch = int(state["epochs_completed"])
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.bad_epochs, self.history = int(state["bad_epochs"]), list(state["history"])
        self.finished = state["finished"]
        if pointer.get("best"):
            self.best_state, _ = ckpt.load_checkpoint(directory, which="best")
        return True

    # -- driver -----------------------------------------------------------------------------------
    def fit(self, *, resume: bool = False) -> FitResult:
        """Train until ``config.epochs``, early stopping or cancellation; checkpoint after each epoch.

        With ``resume`` the run continues from the last checkpoint in ``config.checkpoint_dir`` (a run
        that had already finished returns at once). A cancelled epoch is discarded, so resuming it
        reproduces the uninterrupted run exactly; the returned model then holds the weights at the
        moment of cancellation, the checkpoint those of the last complete epoch. Without validation
        data no ``val_loss`` is reported (it is not the training loss), and a ``val_loss`` metric selects
        the best epoch on the training loss.
        """
        if resume:
            self._restore()
        if self.finished is not None:
            return self._result(self.start_epoch, self.finished)
        epochs_completed = self.start_epoch
        stopped: Stopped = "completed"
        for epoch in range(self.start_epoch, self.config.epochs):
            train_loss = self.train_one_epoch(epoch)
            if train_loss is None:
                stopped = "cancelled"
                break
            metrics = {"epoch": float(epoch), "train_loss": train_loss, **self.evaluate()}
            selected_on = self.config.metric
            if selected_on == "val_loss" and self.val_data is None:
                selected_on = "train_loss"  # nothing to validate on: no val_loss is reported
            if selected_on not in metrics:
                raise KeyError(f"metric {self.config.metric!r} not in {sorted(metrics)}")
            self.history.append(metrics)
            value = metrics[selected_on]
            best_changed = self._improved(value)
            if best_changed:
                self.best_metric, self.best_epoch, self.bad_epochs = value, epoch, 0
                self.best_state = ckpt.plain_state_dict(self.raw_model.state_dict())
            else:
                self.bad_epochs += 1
            if self.scheduler:
                self.scheduler.step()
            epochs_completed = epoch + 1
            if self.config.patience and self.bad_epochs >= self.config.patience:
                stopped = "early_stopping"
            if stopped != "completed" or epochs_completed == self.config.epochs:
                self.finished = stopped
            self._save(epochs_completed, best_changed)
            barrier(self.dist)
            if self.progress:
                self.progress(epoch, -1, train_loss, metrics)
            if self.finished is not None:
                break
        return self._result(epochs_completed, stopped if self.finished is None else self.finished)

    def _result(self, epochs_completed: int, stopped: Stopped) -> FitResult:
        return FitResult(
            model=self.raw_model,
            history=self.history,
            best_metric=self.best_metric,
            best_epoch=self.best_epoch,
            epochs_completed=epochs_completed,
            stopped=stopped,
            best_state=self.best_state,
        )


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Iterable[Any] | Dataset[Any],
    val_data: Iterable[Any] | Dataset[Any] | None,
    config: TrainConfig,
    *,
    resume: bool = False,
    **kwargs: Any,
) -> FitResult:
    """Build a :class:`Trainer` (keyword arguments as in its constructor) and run it."""
    return Trainer(model, loss_fn, train_data, val_data, config, **kwargs).fit(resume=resume)
