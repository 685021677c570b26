"""AI pre-reads: a promoted version reads the project's cases in batches on the gpu queue, its weights
loaded once per batch, a few cases in flight at a time (``Predictor.predict_many``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from django.conf import settings

from labeling.models import Case
from labeling.services.outbox import outbox_send
from ml.models import ModelVersion, Prediction
from ml.pipelines import pipeline_for
from ml.services.snapshots import SERIES_FOR_KIND, case_record, json_safe

log = logging.getLogger(__name__)


def _enqueue_prereads(version_id: int) -> None:
    """Queue a batch of pre-reads with the current transaction (outbox)."""
    outbox_send("ml.tasks.prereads_task", args=(version_id,))


def prereads_compute(*, version_id: int, batch: int = 50) -> int:
    """AI pre-reads of the project's cases that this version has not read yet; returns how many were made.

    The version's weights are loaded once per batch, onto ``ML_DEVICE`` (the gpu queue's GPU), and the
    batch's cases are read a few at a time on threads (``Predictor.predict_many``); outputs are stored in
    case order. Idempotent (a unique row per version and case); a version that is not (or no longer)
    promoted stores nothing (more).
    """

    version = ModelVersion.objects.select_related("project").get(pk=version_id)
    todo = (
        version.project.cases.exclude(predictions__model_version=version)
        .select_related("study")
        .order_by("id")
    )
    cases = list(todo[:batch])

    def promoted() -> bool:
        return ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.PROMOTED).exists()

    if not cases or not promoted():
        return 0
    predictor = pipeline_for(version.kind).load(Path(version.checkpoint_dir), device=settings.ML_DEVICE)
    read: list[Case] = []  # the cases handed to the predictor, in the order its outputs come back

    def records() -> Iterator[dict[str, Any]]:  # read lazily, in this thread (database, store)
        for case in cases:
            try:
                record = case_record(case, SERIES_FOR_KIND[version.kind])
            except Exception:  # one unreadable case must not stop the others
                log.exception("pre-read of case %s by %s failed", case.pk, version)
                continue
            read.append(case)
            yield record

    done = 0
    with closing(predictor.predict_many(records())) as outputs:  # cases run ahead on threads
        for index, output in enumerate(outputs):
            case = read[index]
            if not promoted():  # retired meanwhile: nothing more is stored
                break
            if isinstance(output, Exception):
                log.error("pre-read of case %s by %s failed", case.pk, version, exc_info=output)
                continue
            Prediction.objects.get_or_create(
                model_version=version, case=case, defaults={"output": json_safe(output)}
            )
            done += 1
    if todo.exists() and done:
        _enqueue_prereads(version.pk)  # the next batch
    return done
