"""The one data-folder format and its reader: a product dataset snapshot or a phantom folder.

Both are a folder with a ``manifest.json``. The product writes one snapshot per training run
(``ml.services.snapshots``), frozen with its consensus runs::

    {"format": 2, "kind": "contour" | "lesions" | "ctgrade", "project": 3,
     "snapshot_id": "<content hash>", "content_hash": "<content hash>",
     "scheme": {"name": "mri_sij", "version": 1, "modality": "MR", "items": ["left/iliac_upper/bme", …],
                "definition": {…the grading scheme document: ml.vocab.Vocabulary.from_definition reads it}},
     "consensus_runs": {"bme": 12, …},                            # lesion -> frozen ConsensusRun id
     "studies": [
       {"study_id": "5", "kind": "mri", "path": "studies/5",    # folder with T1/ + STIR/ (or CT/ [+ SEG/])
        "split": "train",                                       # train | val | test (TRAIN, VAL, TEST)
        "readings": [{"reader": "R1", "session": 1,
                      "values": [{"joint": "left", "region": "iliac_upper", "lesion": "bme", "value": 1}]}],
        "soft_labels": [{"joint": "left", "region": "iliac_upper", "lesion": "bme",
                         "posterior": [0.1, 0.9]}],             # frozen Dawid-Skene posterior
        "reference": [{"joint": "left", "region": "joint", "lesion": "mny_grade", "value": 2}],
                                                                # adjudicated / gold labels, optional
        "contours": [{"joint": "left", "slice_index": 5, "points_mm": [[x, y, z], ...]}]}]}
                                                                # consensus joint lines, optional

A series folder holds links ``0001.dcm`` … in slice order (the order ``slice_index`` counts in). Gold cases
(adjudicated or reference) are the ``test`` split: pipelines train on ``train`` and evaluate on ``test``.
A phantom folder has the same ``studies`` list (``path``, ``truth``) plus ``readings/readings.json``
(records ``{reader, session, study_id, payload: {values: [...]}}``); its ``truth.json`` values become
the reference. Values use the reading-payload keys (joint, region, lesion, value) of SPEC §2.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.data.truth import load_truth

Key = tuple[str, str, str]  # (joint, region, lesion)

MANIFEST = "manifest.json"
TRAIN, VAL, TEST = "train", "val", "test"  # the splits, named here once


@dataclass(frozen=True)
class Reading:
    """One reader's session on one study: values keyed by (joint, region, lesion)."""

    reader: str
    session: int
    values: dict[Key, int]


@dataclass(frozen=True)
class StudyRecord:
    """One study of a data folder; ``folder`` holds its series sub-folders."""

    study_id: str
    kind: str
    folder: Path
    readings: list[Reading] = field(default_factory=list)
    soft: dict[Key, list[float]] | None = None
    reference: dict[Key, int] | None = None
    split: str | None = None
    contours: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DataFolder:
    """A loaded manifest: the studies plus the snapshot and consensus ids the model card records."""

    root: Path
    studies: list[StudyRecord]
    snapshot_id: str | None
    consensus_run_id: str | None

    def of_kind(self, kind: str) -> list[StudyRecord]:
        """Studies of one kind (``"mri"`` or ``"ct"``)."""
        return [s for s in self.studies if s.kind == kind]

    def readers(self, kind: str) -> list[str]:
        """Sorted reader ids that read at least one study of ``kind``."""
        return sorted({r.reader for s in self.of_kind(kind) for r in s.readings})


def _values(items: list[dict[str, Any]]) -> dict[Key, int]:
    return {(v["joint"], v["region"], v["lesion"]): int(v["value"]) for v in items}


def load_data_folder(root: str | os.PathLike[str]) -> DataFolder:
    """Load ``root/manifest.json`` (phantom folder or dataset snapshot); raises FileNotFoundError without one."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    by_study: dict[str, list[Reading]] = {}
    if isinstance(manifest.get("readings"), dict):  # phantom folder
        records = json.loads((root / manifest["readings"]["readings"]).read_text(encoding="utf-8"))
        for rec in records:
            reading = Reading(str(rec["reader"]), int(rec["session"]), _values(rec["payload"]["values"]))
            by_study.setdefault(rec["study_id"], []).append(reading)
    studies = []
    for entry in manifest["studies"]:
        readings = by_study.get(entry["study_id"], [])
        readings += [
            Reading(str(r["reader"]), int(r["session"]), _values(r["values"]))
            for r in entry.get("readings", [])
        ]
        soft = None
        if "soft_labels" in entry:
            soft = {
                (v["joint"], v["region"], v["lesion"]): [float(p) for p in v["posterior"]]
                for v in entry["soft_labels"]
            }
        reference = _values(entry["reference"]) if "reference" in entry else None
        if reference is None and entry.get("truth"):
            reference = _values(load_truth(root / entry["truth"]).values())
        studies.append(
            StudyRecord(
                study_id=str(entry["study_id"]),
                kind=str(entry["kind"]),
                folder=root / entry["path"],
                readings=readings,
                soft=soft,
                reference=reference,
                split=entry.get("split"),
                contours=list(entry.get("contours", [])),
            )
        )
    runs = manifest.get("consensus_runs")  # the product's frozen runs, lesion -> ConsensusRun id
    run_id = (
        ",".join(f"{k}:{v}" for k, v in sorted(runs.items())) if runs else manifest.get("consensus_run_id")
    )
    return DataFolder(root, studies, manifest.get("snapshot_id"), run_id)


def series_folder(study: StudyRecord, name: str) -> list[Path]:
    """The files of one series folder of a study (``T1``, ``STIR``, ``CT``, ``SEG``) in slice order."""
    return sorted((study.folder / name).glob("*.dcm"))


def link_study(case: dict[str, Any], folder: Path) -> Path:
    """Lay a case record (``{"series": [{"description", "modality", "files"}]}``) out as a study folder,
    one sub-folder of links per series (``T1/0001.dcm`` …) in the record's slice order; returns ``folder``."""
    for series in case["series"]:
        modality = series.get("modality", "")
        series_dir = folder / (modality if modality in ("CT", "SEG") else series["description"])
        series_dir.mkdir(parents=True, exist_ok=True)
        for i, source in enumerate(series["files"], start=1):
            link = series_dir / f"{i:04d}.dcm"
            if not link.exists():
                link.symlink_to(source)
    return folder
