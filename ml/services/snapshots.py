"""Dataset snapshots: freeze a project's cases and labels for one model kind into a folder (format:
``ml.data.snapshot``); the same data gives the same snapshot (content hash). Gold cases (references or
adjudications) are kept apart for evaluation. ``case_record`` gives one case in the snapshot's case
format, for prediction.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from labeling.dicom import LocalFolderStore
from labeling.models import Case, Project
from labeling.services.ingest import configured_store
from ml.data.files import write_atomically
from ml.data.snapshot import MANIFEST, TEST, TRAIN, link_study
from ml.models import DatasetSnapshot, ModelKind
from ml.selectors import item_key, labelled_items, snapshot_labels
from ml.vocab import MODEL_INPUTS


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


#: The series each kind reads (``ml.vocab.MODEL_INPUTS``); empty: every series of the study.
SERIES_FOR_KIND = {kind: list(series) for kind, (_, series) in MODEL_INPUTS.items()}


def _series_files(case: Case, wanted: list[str], dicom_dir: Path) -> list[dict[str, Any]]:
    """Each wanted series with its files in slice order: local files are referenced, remote ones copied."""
    store = configured_store()
    out = []
    for series in case.study.series.prefetch_related("instances").order_by("id"):
        if wanted and series.description not in wanted:
            continue
        files = []
        for inst in series.instances.all():
            if isinstance(store, LocalFolderStore):
                files.append(str(store.file_path(case.study.study_uid, series.series_uid, inst.sop_uid)))
            else:
                target = dicom_dir / series.series_uid / f"{inst.slice_index:04d}.dcm"
                if not target.exists():  # whole or absent (a full disk leaves no partial file to trust)
                    dataset = store.instance(case.study.study_uid, series.series_uid, inst.sop_uid)
                    write_atomically(target, dataset.save_as, what="snapshot image")
                files.append(str(target))
        out.append(
            {
                "description": series.description,
                "modality": series.modality,
                "series_uid": series.series_uid,
                "files": files,
            }
        )
    return out


def _study_entry(folder: Path, case: dict[str, Any], modality: str) -> dict[str, Any]:
    """The same case as a study folder (series sub-folders of links to the files) with its labels, the
    layout every pipeline reads (``ml.data.snapshot``)."""
    link_study(case, folder / "studies" / str(case["case_id"]))

    def rows(values: dict[str, Any], key: str) -> list[dict[str, Any]]:
        return [
            dict(zip(("joint", "region", "lesion"), item.split("/"), strict=True), **{key: v})
            for item, v in sorted(values.items())
        ]

    entry = {
        "study_id": str(case["case_id"]),
        "kind": "ct" if modality == "CT" else "mri",
        "path": f"studies/{case['case_id']}",
        "split": case["split"],
        "readings": [
            {"reader": f"R{r['reader']}", "session": r["session"], "values": rows(r["values"], "value")}
            for r in case["readers"]
        ],
        "soft_labels": rows(case["consensus"], "posterior"),
        "contours": case["contours"]["consensus"],  # joint lines readers agreed on: lesion crops follow them
    }
    if case["gold"]:
        entry["reference"] = rows(case["gold"], "value")
    return entry


def _write_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), what="snapshot manifest")


def snapshot_create(*, project: Project, kind: str) -> DatasetSnapshot:
    """Freeze the project's current labels for ``kind`` into a snapshot folder; the same data gives the
    same snapshot (content hash), so a run can be repeated exactly."""
    labels = snapshot_labels(project=project)
    scheme = project.scheme.parsed
    root = Path(settings.ML_WEIGHTS_DIR) / "snapshots" / f"project-{project.pk}-{kind}"
    case_rows = []
    gold_cases = set(labels["gold"])
    if kind == ModelKind.CONTOUR:  # adjudicated joint lines are the contour model's gold
        gold_cases |= labels["contour_gold"]
    for case in project.cases.select_related("study").order_by("id"):
        readers = labels["readings"].get(case.pk, {})
        if not readers and case.pk not in gold_cases:
            continue  # nothing known about this case yet
        case_rows.append(
            {
                "case_id": case.pk,
                "study_uid": case.study.study_uid,
                "split": TEST if case.pk in gold_cases else TRAIN,
                "series": _series_files(case, SERIES_FOR_KIND[kind], root / "dicom"),
                "consensus": labels["consensus"].get(case.pk, {}),
                "readers": [
                    {"reader": r, "session": s, "values": v} for (r, s), v in sorted(readers.items())
                ],
                "gold": labels["gold"].get(case.pk, {}),
                "contours": labels["contours"].get(case.pk, {"consensus": [], "readers": []}),
            }
        )
    manifest = {
        "format": 2,
        "kind": kind,
        "project": project.pk,
        "scheme": {
            "name": scheme.name,
            "version": scheme.version,
            "modality": scheme.modality,
            "items": [item_key(*i.key) for i in scheme.form_items],
            "definition": project.scheme.definition,  # ml.vocab.Vocabulary.from_definition reads it
        },
        "consensus_runs": labels["runs"],
        "cases": case_rows,
    }
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    if existing := DatasetSnapshot.objects.filter(project=project, kind=kind, content_hash=digest).first():
        return existing
    folder = root / digest[:16]
    studies = [_study_entry(folder, case, scheme.modality) for case in case_rows]
    frozen = {
        k: v for k, v in manifest.items() if k != "cases"
    }  # the hash covers the files; studies link them
    _write_atomically(
        folder / MANIFEST,
        json.dumps({**frozen, "content_hash": digest, "snapshot_id": digest, "studies": studies}, indent=1),
    )
    summary = {
        "cases": len(case_rows),
        "train": sum(c["split"] == TRAIN for c in case_rows),
        "gold": sum(c["split"] == TEST for c in case_rows),
        "labelled_items": labelled_items(project=project),  # the nightly check counts new ones from here
    }
    try:
        with transaction.atomic():
            return DatasetSnapshot.objects.create(
                project=project,
                kind=kind,
                content_hash=digest,
                path=str(folder),
                summary=summary,
                consensus_runs=labels["runs"],
            )
    except IntegrityError:  # the same snapshot was stored concurrently
        return DatasetSnapshot.objects.get(project=project, kind=kind, content_hash=digest)


def case_record(case: Case, series_for: list[str]) -> dict[str, Any]:
    """A case in the snapshot's case format (series with files), for prediction; remote instances are
    fetched once into ``ML_WEIGHTS_DIR/prereads``."""
    folder = Path(settings.ML_WEIGHTS_DIR) / "prereads" / case.study.study_uid
    return {
        "case_id": case.pk,
        "study_uid": case.study.study_uid,
        "series": _series_files(case, series_for, folder),
    }
