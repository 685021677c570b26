"""Reads of the model registry (no writes): the labels a snapshot freezes, how many items a model can learn
from, and the promoted models' pre-reads of a case."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from labeling.models import (
    Adjudication,
    Contour,
    ContourAdjudication,
    ContourConsensus,
    ItemPosterior,
    Project,
    ReadingValue,
)
from labeling.selectors import reader_numbers
from ml.models import ModelVersion, Prediction


def item_key(joint: str, region: str, lesion: str) -> str:
    """A snapshot's item key, ``joint/region/lesion``."""
    return f"{joint}/{region}/{lesion}"


def snapshot_labels(*, project: Project) -> dict[str, Any]:
    """The labels a snapshot freezes, per case: consensus posteriors (current runs), pseudonymous readings, gold,
    contours. An adjudicated joint line replaces the consensus line of its slice (marked ``adjudicated``), and
    its case is in ``contour_gold``: the contour model is evaluated on it."""
    names = reader_numbers(project=project)
    consensus: dict[int, dict[str, list[float]]] = defaultdict(dict)
    runs = {}
    for run in project.consensus_runs.filter(is_current=True):
        runs[run.lesion] = run.pk
        for case_id, joint, region, posterior in run.posteriors.values_list(
            "case_id", "joint", "region", "posterior"
        ):
            consensus[case_id][item_key(joint, region, run.lesion)] = posterior
    readings: dict[int, dict[tuple[int, int], dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for case_id, reader, session, joint, region, lesion, value in ReadingValue.objects.filter(
        reading__project=project, reading__superseded_by__isnull=True
    ).values_list(
        "reading__case_id", "reading__reader_id", "reading__session", "joint", "region", "lesion", "value"
    ):
        readings[case_id][(names.get(reader, 0), session)][item_key(joint, region, lesion)] = value
    gold: dict[int, dict[str, int]] = defaultdict(dict)
    for case_id, reference in project.cases.filter(is_gold=True).values_list("id", "reference"):
        for row in reference or ():
            gold[case_id][item_key(row["joint"], row["region"], row["lesion"])] = row["value"]
    for a in Adjudication.objects.filter(project=project, superseded_by__isnull=True).order_by("id"):
        gold[a.case_id][item_key(a.joint, a.region, a.lesion)] = a.value
    contours: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"consensus": [], "readers": []}
    )
    # The consensus line of each traced slice; where an adjudicator decided the line, theirs (gold) instead.
    lines: dict[tuple[int, str, int], dict[str, Any]] = {}
    for row in ContourConsensus.objects.filter(project=project):
        lines[(row.case_id, row.joint, row.slice_index)] = {
            "joint": row.joint,
            "slice_index": row.slice_index,
            "points_mm": row.points_mm,
        }
    contour_gold: set[int] = set()
    for d in ContourAdjudication.objects.filter(project=project, superseded_by__isnull=True):
        lines[(d.case_id, d.joint, d.slice_index)] = {
            "joint": d.joint,
            "slice_index": d.slice_index,
            "points_mm": d.points_mm,
            "adjudicated": True,
        }
        contour_gold.add(d.case_id)
    for (case_id, _, _), line in sorted(lines.items()):
        contours[case_id]["consensus"].append(line)
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
    return {
        "runs": runs,
        "consensus": consensus,
        "readings": readings,
        "gold": gold,
        "contours": contours,
        "contour_gold": contour_gold,
    }


def labelled_items(*, project: Project) -> int:
    """Items a model can learn from: adjudicated, or confidently decided by the current consensus."""
    confident = ItemPosterior.objects.filter(
        run__project=project, run__is_current=True, max_posterior__gte=project.adjudication_threshold
    ).count()
    return confident + Adjudication.objects.filter(project=project, superseded_by__isnull=True).count()


#: Keys a stored pre-read may carry that name the case (a contour pre-read before the blinding fix carried
#: the case's primary key as each line's ``scan_id``); readers and adjudicators never see them.
INTERNAL_KEYS = frozenset({"scan_id"})


def _without_internal_ids(output: Any) -> Any:
    if isinstance(output, dict):
        return {k: _without_internal_ids(v) for k, v in output.items() if k not in INTERNAL_KEYS}
    if isinstance(output, list):
        return [_without_internal_ids(v) for v in output]
    return output


def ai_output_for_case(*, case_id: int) -> list[dict[str, Any]]:
    """The promoted models' pre-reads of a case (empty when none exists yet), less any internal id."""
    return [
        {
            "kind": p.model_version.kind,
            "version": p.model_version.version,
            "output": _without_internal_ids(p.output),
        }
        for p in Prediction.objects.filter(
            case_id=case_id, model_version__status=ModelVersion.Status.PROMOTED
        )
        .select_related("model_version")
        .order_by("model_version__kind")
    ]
