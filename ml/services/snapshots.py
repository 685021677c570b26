"""Dataset snapshots: the cases and labels a training run sees, frozen at its start (format:
``ml.pipelines.snapshot``). Gold cases (gold references or adjudications) are kept apart for evaluation."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from labeling.dicom import LocalFolderStore, store_open
from labeling.models import Adjudication, Case, Contour, ContourConsensus, Project, ReadingValue
from labeling.selectors import reader_pseudonyms
from ml.models import DatasetSnapshot
from ml.pipelines.snapshot import MANIFEST, link_study

SERIES_FOR_KIND = {"contour": ["T1"], "lesions": ["T1", "STIR"], "ctgrade": []}  # [] = every series


def _item(joint: str, region: str, lesion: str) -> str:
    return f"{joint}/{region}/{lesion}"


def _series_files(case: Case, wanted: list[str], dicom_dir: Path) -> list[dict[str, Any]]:
    """Each wanted series with its files in slice order: local files are referenced, remote ones copied."""
    store = store_open(dicomweb_url=settings.DICOMWEB_URL, folder=settings.DICOM_FOLDER)
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
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    store.instance(case.study.study_uid, series.series_uid, inst.sop_uid).save_as(target)
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


def _labels(project: Project) -> dict[str, Any]:
    """Per case: consensus posteriors (current runs), pseudonymous readings, gold, contours."""
    names = {uid: int(name.split()[-1]) for uid, name in reader_pseudonyms(project=project).items()}
    consensus: dict[int, dict[str, list[float]]] = defaultdict(dict)
    runs = {}
    for run in project.consensus_runs.filter(is_current=True):
        runs[run.lesion] = run.pk
        for case_id, joint, region, posterior in run.posteriors.values_list(
            "case_id", "joint", "region", "posterior"
        ):
            consensus[case_id][_item(joint, region, run.lesion)] = posterior
    readings: dict[int, dict[tuple[int, int], dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for case_id, reader, session, joint, region, lesion, value in ReadingValue.objects.filter(
        reading__project=project, reading__superseded_by__isnull=True
    ).values_list(
        "reading__case_id", "reading__reader_id", "reading__session", "joint", "region", "lesion", "value"
    ):
        readings[case_id][(names.get(reader, 0), session)][_item(joint, region, lesion)] = value
    gold: dict[int, dict[str, int]] = defaultdict(dict)
    for case_id, reference in project.cases.filter(is_gold=True).values_list("id", "reference"):
        for row in reference or ():
            gold[case_id][_item(row["joint"], row["region"], row["lesion"])] = row["value"]
    for a in Adjudication.objects.filter(project=project, superseded_by__isnull=True).order_by("id"):
        gold[a.case_id][_item(a.joint, a.region, a.lesion)] = a.value
    contours: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"consensus": [], "readers": []}
    )
    for row in ContourConsensus.objects.filter(project=project).order_by("case_id", "joint", "slice_index"):
        contours[row.case_id]["consensus"].append(
            {"joint": row.joint, "slice_index": row.slice_index, "points_mm": row.points_mm}
        )
    for c in Contour.objects.filter(
        reading__project=project, reading__superseded_by__isnull=True
    ).select_related("reading"):
        contours[c.reading.case_id]["readers"].append(
            {
                "reader": names.get(c.reading.reader_id, 0),
                "session": c.reading.session,
                "joint": c.joint,
                "slice_index": c.slice_index,
                "points_mm": c.points_mm,
            }
        )
    return {"runs": runs, "consensus": consensus, "readings": readings, "gold": gold, "contours": contours}


def _study_entry(folder: Path, case: dict[str, Any], modality: str) -> dict[str, Any]:
    """The same case as a study folder (series sub-folders of links to the files) with its labels, the
    layout the lesion and CT pipelines read (``ml.lesions.snapshot``)."""
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
        "split": "test" if case["split"] == "gold" else "train",
        "readings": [
            {"reader": f"R{r['reader']}", "session": r["session"], "values": rows(r["values"], "value")}
            for r in case["readers"]
        ],
        "soft_labels": rows(case["consensus"], "posterior"),
    }
    if case["gold"]:
        entry["reference"] = rows(case["gold"], "value")
    return entry


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def snapshot_create(*, project: Project, kind: str) -> DatasetSnapshot:
    """Freeze the project's current labels for ``kind`` into a snapshot folder; the same data gives the
    same snapshot (content hash), so a run can be repeated exactly."""
    labels = _labels(project)
    scheme = project.scheme.parsed
    root = Path(settings.ML_WEIGHTS_DIR) / "snapshots" / f"project-{project.pk}-{kind}"
    case_rows = []
    for case in project.cases.select_related("study").order_by("id"):
        readers = labels["readings"].get(case.pk, {})
        if not readers and case.pk not in labels["gold"]:
            continue  # nothing known about this case yet
        case_rows.append(
            {
                "case_id": case.pk,
                "study_uid": case.study.study_uid,
                "split": "gold" if case.pk in labels["gold"] else "train",
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
        "format": 1,
        "kind": kind,
        "project": project.pk,
        "scheme": {
            "name": scheme.name,
            "version": scheme.version,
            "modality": scheme.modality,
            "items": [_item(*i.key) for i in scheme.form_items],
        },
        "consensus_runs": labels["runs"],
        "cases": case_rows,
    }
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    if existing := DatasetSnapshot.objects.filter(project=project, kind=kind, content_hash=digest).first():
        return existing
    folder = root / digest[:16]
    studies = [_study_entry(folder, case, scheme.modality) for case in case_rows]
    _write_atomically(
        folder / MANIFEST,
        json.dumps({**manifest, "content_hash": digest, "snapshot_id": digest, "studies": studies}, indent=1),
    )
    summary = {
        "cases": len(case_rows),
        "train": sum(c["split"] == "train" for c in case_rows),
        "gold": sum(c["split"] == "gold" for c in case_rows),
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
