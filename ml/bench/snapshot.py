"""A phantom training folder as the product would snapshot it (``ml.data.snapshot`` format 2), so the bench
trains through ``ml.pipelines`` on what a project would hold: the simulated readers' readings and the
consensus of their drawn joint lines, never the phantom truth.

Each study's series files are linked into ``<out>/studies/<study_id>/<series>/NNNN.dcm`` (as
``ml.services.snapshots`` lays out a snapshot), so the study folder holds no ``truth.json``: lesion crops follow the
readers' consensus contours and the contour model's traces, the CT grader learns from the ordinal
Dawid-Skene posterior of the readings (``target`` auto finds no adjudicated grade), and the contour model
learns from consensus contours (``ml.consensus.contour_consensus`` of every reader's and session's line on
a slice, as ``labeling.services.contour_consensus`` fits them).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ml.consensus.contours import contour_consensus
from ml.data.snapshot import MANIFEST, TRAIN

#: Model kind -> the phantom study kind its snapshot holds.
STUDY_KIND = {"contour": "mri", "lesions": "mri", "ctgrade": "ct"}


def consensus_contours(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One consensus line per (joint, slice) of the readers' drawn contours of one study (payload
    contours: ``joint``, ``slice_index``, ``series_uid``, ``points_mm``)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in drawn:
        groups[(str(c["joint"]), int(c["slice_index"]))].append(c)
    out = []
    for (joint, k), lines in sorted(groups.items()):
        fitted = contour_consensus([np.asarray(c["points_mm"], dtype=float) for c in lines])
        out.append(
            {
                "joint": joint,
                "slice_index": k,
                "series_uid": lines[0].get("series_uid", ""),
                "points_mm": np.round(fitted.polyline, 3).tolist(),
            }
        )
    return out


def _link_series(source: Path, target: Path) -> None:
    """Link every series folder's DICOM files of a phantom study (not its truth) into ``target``."""
    for series in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(series.glob("*.dcm"))
        if not files:
            continue
        folder = target / series.name
        folder.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files, start=1):
            link = folder / f"{i:04d}.dcm"
            if not link.exists():
                link.symlink_to(f.resolve())


#: Consensus lines of every study of a phantom set, shared by its snapshots (the contour and the lesion
#: snapshot fit the same lines; ~1-2 s per study and core).
CONSENSUS_CACHE = "consensus-contours.json"


def _consensus(
    phantom_dir: Path,
    key: str,
    entries: list[dict[str, Any]],
    drawn: list[list[dict[str, Any]]],
    workers: int,
) -> list[list[dict[str, Any]]]:
    """Consensus lines of each study's ``drawn`` lines ([] where none), fitted once per phantom set: kept in
    ``readings/consensus-contours.json`` under ``key``, the hash of the set's readings.json."""
    path = phantom_dir / "readings" / CONSENSUS_CACHE
    cache: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        data = json.loads(path.read_text())
        cache = data["studies"] if data.get("key") == key else {}
    todo = [(e["study_id"], lines) for e, lines in zip(entries, drawn, strict=True) if lines]
    todo = [(sid, lines) for sid, lines in todo if sid not in cache]
    if todo:
        if workers > 1 and len(todo) > 1:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                fitted = pool.map(consensus_contours, [lines for _, lines in todo], chunksize=1)
        else:
            fitted = [consensus_contours(lines) for _, lines in todo]
        cache |= {sid: lines for (sid, _), lines in zip(todo, fitted, strict=True)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "studies": cache}))
        tmp.replace(path)
    return [cache[e["study_id"]] if lines else [] for e, lines in zip(entries, drawn, strict=True)]


def training_snapshot(
    phantom_dir: Path, out: Path, kind: str, *, max_contoured: int | None = None, workers: int = 1
) -> Path:
    """Write (or reuse) the training snapshot of model ``kind`` of the phantoms in ``phantom_dir``.

    ``max_contoured`` keeps consensus contours on the first that many studies only (the contour model's
    training-set size; ``None``: every study the readers drew on); ``workers`` processes fit them (about
    2 s per study of 4 readers on a busy core), once per phantom set (:data:`CONSENSUS_CACHE`). Returns
    ``out``. A snapshot written from the same phantom manifest and arguments is reused.
    """
    manifest = json.loads((phantom_dir / MANIFEST).read_text())
    key = hashlib.sha1(
        json.dumps([manifest["seed"], manifest["arguments"], kind, max_contoured], sort_keys=True).encode()
    ).hexdigest()
    written = out / MANIFEST
    if written.exists() and json.loads(written.read_text()).get("snapshot_id") == key:
        return out
    records: list[dict[str, Any]] = []
    readings_key = ""
    if isinstance(manifest.get("readings"), dict):
        text = (phantom_dir / manifest["readings"]["readings"]).read_bytes()
        records, readings_key = json.loads(text), hashlib.sha1(text).hexdigest()
    by_study: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        by_study[rec["study_id"]].append(rec)
    entries = [e for e in manifest["studies"] if e["kind"] == STUDY_KIND[kind]]
    drawn: list[list[dict[str, Any]]] = []
    for entry in entries:
        _link_series(phantom_dir / entry["path"], out / "studies" / entry["study_id"])
        lines = [c for r in by_study.get(entry["study_id"], []) for c in r["payload"].get("contours", [])]
        keep = bool(lines) and (max_contoured is None or sum(map(bool, drawn)) < max_contoured)
        drawn.append(lines if keep else [])
    consensus = _consensus(phantom_dir, readings_key, entries, drawn, workers)
    studies = [
        {
            "study_id": entry["study_id"],
            "kind": entry["kind"],
            "path": f"studies/{entry['study_id']}",
            "split": TRAIN,
            "readings": [
                {"reader": r["reader"], "session": r["session"], "values": r["payload"]["values"]}
                for r in by_study.get(entry["study_id"], [])
            ],
            "contours": lines,
        }
        for entry, lines in zip(entries, consensus, strict=True)
    ]
    out.mkdir(parents=True, exist_ok=True)
    snapshot = {"format": 2, "kind": kind, "snapshot_id": key, "content_hash": key, "studies": studies}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(snapshot))
    tmp.replace(written)
    return out
