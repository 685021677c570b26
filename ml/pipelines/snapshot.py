"""The dataset-snapshot format shared by the product (which writes it) and the pipelines (which read it).

A snapshot is a folder with ``manifest.json``::

    {"format": 1, "kind": "contour" | "lesions" | "ctgrade", "project": 3, "content_hash": "…",
     "scheme": {"name": "mri_sij", "version": 1, "modality": "MR", "items": ["left/iliac_upper/bme", …]},
     "consensus_runs": {"bme": 12, …},
     "cases": [{
        "case_id": 5, "study_uid": "…", "split": "train" | "gold",
        "series": [{"description": "T1", "series_uid": "…", "files": ["/abs/…dcm", …]}],  # slice order
        "consensus": {"left/iliac_upper/bme": [p0, p1], …},      # posteriors of the frozen runs
        "readers": [{"reader": 1, "session": 1, "values": {"left/iliac_upper/bme": 0, …}}],
        "gold": {"left/iliac_upper/bme": 1, …},                  # adjudicated or reference classes
        "contours": {"consensus": [{"joint": "left", "slice_index": 5, "points_mm": [[x, y, z], …]}],
                     "readers": [{"reader": 1, "session": 1, "joint": "left", "slice_index": 5,
                                  "points_mm": […]}]}}]}

Item keys are ``joint/region/lesion``. Readers are pseudonymous integers. Gold cases are kept apart for
evaluation: pipelines train on ``split == "train"`` and evaluate on ``split == "gold"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def load_manifest(snapshot_dir: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((Path(snapshot_dir) / MANIFEST).read_text())
    if manifest.get("format") != 1:
        raise ValueError(f"{snapshot_dir}: unsupported snapshot format {manifest.get('format')!r}")
    return manifest


def cases(manifest: dict[str, Any], split: str | None = None) -> list[dict[str, Any]]:
    return [c for c in manifest["cases"] if split is None or c["split"] == split]


def series_files(case: dict[str, Any], description: str | None = None) -> list[str]:
    """Files of the case's series named ``description`` (first series when None); KeyError if absent."""
    for series in case["series"]:
        if description is None or series["description"] == description:
            return list(series["files"])
    raise KeyError(f"case {case['case_id']} has no {description} series")


def link_study(case: dict[str, Any], folder: Path) -> Path:
    """Lay a case out as a study folder, one sub-folder of links per series (``T1/0001.dcm`` …), the
    layout the lesion and CT packages read; returns ``folder``."""
    for series in case["series"]:
        modality = series.get("modality", "")
        series_dir = folder / (modality if modality in ("CT", "SEG") else series["description"])
        series_dir.mkdir(parents=True, exist_ok=True)
        for i, source in enumerate(series["files"], start=1):
            link = series_dir / f"{i:04d}.dcm"
            if not link.exists():
                link.symlink_to(source)
    return folder
