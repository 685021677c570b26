"""Model pipelines: how each model kind trains on, is evaluated on, and predicts from a dataset snapshot.

Plain Python (no Django): the retraining task of the product calls ``pipeline_for(kind)`` and hands it a
snapshot folder written by ``ml.services.snapshots`` (format in ``ml.data.snapshot``). Each pipeline wraps one
model package (ml.contours, ml.lesions, ml.ctgrade) and the shared loop of ml.training.
"""

from __future__ import annotations

import importlib
import tempfile
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, Protocol

from ml.config import check_keys
from ml.data.snapshot import link_study

Progress = Callable[[dict[str, Any]], None]
#: What ``Predictor.predict_many`` yields, case by case: the pre-read, or the exception its case raised.
PreReads = Generator[dict[str, Any] | Exception, None, None]
ShouldStop = Callable[[], bool]

PIPELINES = {
    "contour": "ml.pipelines.contour",
    "lesions": "ml.pipelines.lesions",
    "ctgrade": "ml.pipelines.ctgrade",
}


#: Flat training keys every pipeline accepts at the top level (they go to its ``train`` section).
TRAIN_KEYS = ("epochs", "lr", "batch_size", "seed", "device", "patience", "amp", "compile")
#: The top-level keys of each kind's training configuration (a run's or a training policy's); the nested
#: sections (``train``, ``model``, ``crop`` …) are checked against their dataclasses when training starts.
CONFIG_KEYS: dict[str, frozenset[str]] = {
    "contour": frozenset(
        {"epochs", "lr", "batch_size", "seed", "patience", "device", "amp"}
        | {"width", "crop_mm", "pixel_mm", "jitter_mm", "copies"}
    ),
    "lesions": frozenset(TRAIN_KEYS)
    | {"target", "train", "model", "crop", "cache_dir", "val_fraction", "flip_sides"}
    | {"contour_checkpoint", "contour_version", "confusion_warmup_epochs"},
    "ctgrade": frozenset(TRAIN_KEYS)
    | {"target", "train", "seg_train", "grader", "crop", "cache_dir", "val_fraction"},
}


def check_config(kind: str, config: dict[str, Any]) -> None:
    """Raise ``ml.config.ConfigError`` naming the first key ``kind``'s training does not know."""
    check_keys(config, CONFIG_KEYS[kind], f"the {kind} training configuration")


class Cancelled(Exception):
    """Training stopped because ``should_stop`` asked it to."""


@dataclass(frozen=True)
class TrainRequest:
    """One training job: read ``snapshot_dir``, write checkpoints to ``checkpoint_dir`` (resumable)."""

    snapshot_dir: Path
    checkpoint_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    progress: Progress = lambda info: None
    should_stop: ShouldStop = lambda: False
    resume: bool = False
    snapshot_id: str = ""


@dataclass(frozen=True)
class Evaluation:
    """Metrics on the snapshot's gold cases: ``primary`` names the deciding one (larger is better);
    ``per_output`` holds the metric per output (e.g. AUC per lesion item) for the no-drop rule."""

    primary: str
    metrics: dict[str, float]
    per_output: dict[str, float] = field(default_factory=dict)
    n_gold: int = 0

    @property
    def score(self) -> float:
        return self.metrics[self.primary]


#: Cases a pre-read batch reads at once (threads), at most. A case's numpy/scipy work (filters, resampling,
#: crops) and torch's kernels release the GIL, so a second case keeps a second core busy; pydicom does not.
#: Never more than the process's torch threads: its share of the cores (config/celery.py gives each worker
#: process cores / processes), or two processes each reading two cases on two cores wait for each other.
PREREAD_WORKERS = 2


class Predictor(Protocol):
    """A checkpoint's weights loaded once onto a device; pre-reads any number of cases with them."""

    def predict(self, case: dict[str, Any]) -> dict[str, Any]:
        """Pre-read one case of a snapshot-style case record (series with DICOM file paths)."""

    def predict_many(self, cases: Iterable[dict[str, Any]]) -> PreReads:
        """Pre-read cases in their order: each one's output (what :meth:`predict` gives) or the exception
        it raised, so one unreadable case does not stop the others."""


def predict_concurrently(
    predict: Callable[[dict[str, Any]], dict[str, Any]],
    cases: Iterable[dict[str, Any]],
    *,
    workers: int | None = None,
) -> PreReads:
    """``predict(case)`` of each case, yielded in order (the exception in place of a failed case's
    output), with ``workers`` (default ``PREREAD_WORKERS``, at most torch's threads) cases in flight on
    threads. ``cases`` is read lazily, in the caller's thread (a generator of database reads stays there);
    leaving the loop early cancels the cases not started and waits for the at most ``workers`` running ones.
    One worker, or a single case, runs in the caller's thread."""
    if not workers:
        import torch

        workers = min(PREREAD_WORKERS, torch.get_num_threads())
    workers = max(1, workers)
    todo = iter(cases)
    head = list(islice(todo, 2))
    if workers == 1 or len(head) < 2:  # nothing to overlap: no thread (torch warms up in each new one)
        for case in chain(head, todo):
            yield _outcome(predict, case)
        return
    todo = chain(head, todo)
    pending: deque[Future[dict[str, Any] | Exception]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preread") as pool:
        try:
            pending.extend(pool.submit(_outcome, predict, case) for case in islice(todo, workers))
            while pending:
                future = pending.popleft()
                # keep the pool full while this case's output is handed out
                pending.extend(pool.submit(_outcome, predict, case) for case in islice(todo, 1))
                yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _outcome(
    predict: Callable[[dict[str, Any]], dict[str, Any]], case: dict[str, Any]
) -> dict[str, Any] | Exception:
    try:
        return predict(case)
    except Exception as error:  # handed to the caller, case by case
        return error


class StudyPredictor(Protocol):
    """A model that reads a study folder (one sub-folder per series): ml.lesions' and ml.ctgrade's."""

    def predict_study(self, folder: Path) -> dict[str, Any]: ...


class StudyPreReader:
    """A :class:`Predictor` over a study predictor loaded once: each case record is laid out as a study folder
    of links to its files (``ml.data.snapshot.link_study``) and read; the weights stay loaded for the batch."""

    def __init__(self, predictor: StudyPredictor) -> None:
        self.predictor = predictor

    def predict(self, case: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            return self.predictor.predict_study(link_study(case, Path(tmp) / "study"))

    def predict_many(self, cases: Iterable[dict[str, Any]]) -> PreReads:
        return predict_concurrently(self.predict, cases)


class Pipeline(Protocol):
    kind: str
    default_config: dict[str, Any]

    def train(self, request: TrainRequest) -> dict[str, Any]:
        """Train (or resume) and return the model card; raises Cancelled when stopped."""

    def evaluate(self, checkpoint_dir: Path, snapshot_dir: Path, device: str = "auto") -> Evaluation:
        """Score a checkpoint on the snapshot's gold split, on ``device`` ("auto": CUDA when present)."""

    def load(self, checkpoint_dir: Path, device: str = "auto") -> Predictor:
        """Load a checkpoint's weights onto ``device`` for pre-reads; FileNotFoundError when absent."""


def loop_progress(request: TrainRequest, epochs: int) -> Callable[[int, int, float, Any], None]:
    """Adapt ml.training's ``progress(epoch, step, loss, metrics)`` to the request's dict reports."""

    def progress(epoch: int, step: int, loss: float, metrics: Any) -> None:
        request.progress(
            {
                "epoch": epoch,
                "epochs": epochs,
                "step": step,
                "loss": float(loss),
                "metrics": {k: float(v) for k, v in dict(metrics).items()},
            }
        )

    return progress


def pipeline_for(kind: str) -> Pipeline:
    """The pipeline of a model kind; ValueError for an unknown kind."""
    if kind not in PIPELINES:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(PIPELINES)}")
    module = importlib.import_module(PIPELINES[kind])
    return module.PIPELINE  # type: ignore[no-any-return]
