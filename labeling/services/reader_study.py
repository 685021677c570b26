"""Reader studies: did the AI help? MRMC analysis of any two conditions of a project's reads (issue 14):
aided vs unaided by default, or e.g. T1 only vs T1 + STIR (``labeling.conditions``); differences are the
second condition minus the first.

Reads → binary endpoints of the scheme (per joint: an ordinal grade ≥ 2 with the grade as its own rating, a
binary lesion present in any region; per patient for CT: modified New York, bilateral ≥ 2 or unilateral ≥ 3,
rated by max(min(L, R), max(L, R) − 1), the monotone grade score that is ≥ 2 exactly when the rule holds).
A binary lesion rated on the scheme's confidence or probability scale enters the ROC analysis by its ratings
(the highest over the joint's regions), else by its 0/1 values; every endpoint says which rating it used
→ ``ml.readerstudy.mrmc`` per endpoint (empirical AUC with jackknife covariance, random readers and cases;
the same with fixed readers for the per-reader differences; sensitivity and specificity at the endpoint's
cut) → ROC curves, the change in inter-reader agreement → one ReaderStudyAnalysis row, keyed by the hash of
its inputs like a consensus run. First sessions only (repeats measure intra-reader agreement, not the aid);
superseded readings left out. The reference standard is chosen per analysis and written on the result.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.conditions import AIDED, CONDITIONS, UNAIDED, condition_label
from labeling.exceptions import InvalidInput
from labeling.models import Adjudication, Project, ReaderStudyAnalysis, ReadingValue
from labeling.selectors import reader_pseudonyms
from labeling.services.audit import audit_record
from labeling.services.consensus import MAX_ITER, SMOOTHING, TOL
from labeling.services.csvcells import csv_text
from labeling.services.outbox import outbox_send
from ml.consensus import fit
from ml.consensus.agreement import cohen_kappa
from ml.readerstudy import MrmcResult, mrmc, roc_points
from ml.readerstudy.agreement import agreement_change
from ml.readerstudy.metrics import average_roc

ANALYSIS_VERSION = 4  # 4: any two conditions, intra-reader agreement per condition; 3: confidence/probability ratings and the patient-level grade score; bump when the analysis changes: stored results of older versions are not reused
DEFAULT_CONDITIONS = (UNAIDED, AIDED)  # compared when a project names no study conditions
REFERENCES = tuple(ReaderStudyAnalysis.Reference.values)
N_BOOT = 1000
N_BOOT_INTRA = 200

Values = dict[tuple[str, str, str], int]  # (joint, region, lesion) -> value
Ratings = dict[tuple[str, str, str], int | None]  # (joint, region, lesion) -> rating (None: not rated)


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    unit: str  # "joint" or "patient"
    lesion: str
    threshold: int  # a joint is positive by the reference at value >= threshold
    call_from: int  # a read is called positive at rating >= call_from (sensitivity, specificity, agreement)
    rating: str  # "grade", "confidence", "probability" or "value": what the ROC analysis ranks reads by
    rating_label: str  # the same in words, written on every result


def endpoints_for(project: Project) -> list[Endpoint]:
    """The binary endpoints a project's scheme supports, each with the rating its ROC analysis uses."""
    scheme = project.scheme.parsed
    out = []
    for lesion in scheme.form_lesions:
        values = scheme.lesion_values(lesion)
        if scheme.lesion_is_ordinal(lesion) and max(values) >= 2:
            out.append(
                Endpoint(
                    f"{lesion}_ge2",
                    f"{lesion} grade ≥ 2, per joint",
                    "joint",
                    lesion,
                    2,
                    2,
                    "grade",
                    f"the {lesion} grade {min(values)}–{max(values)} (the ordinal item as its own rating)",
                )
            )
        elif tuple(values) == (0, 1):
            label = f"{lesion} present, per joint (any region)"
            scale = scheme.lesion_rating(lesion)
            if scale is None:
                out.append(Endpoint(lesion, label, "joint", lesion, 1, 1, "value", "the binary value 0/1"))
            else:
                kind = "probability" if scale.kind == "probability" else "confidence"
                words = (
                    f"the reader's {kind} {scale.low}–{scale.high} ({scale.describe()}), the highest over the "
                    f"joint's regions; called present from {scale.present_from}"
                )
                out.append(Endpoint(lesion, label, "joint", lesion, 1, scale.present_from, kind, words))
    derived = scheme.definition.get("derived") or {}
    if "mny_radiological_positive" in derived and "mny_grade" in scheme.form_lesions:
        out.append(
            Endpoint(
                "mny_patient",
                "modified New York positive, per patient (bilateral grade ≥ 2 or unilateral ≥ 3)",
                "patient",
                "mny_grade",
                1,
                2,
                "grade",
                "the grades' score max(min(left, right), max(left, right) − 1), 0–4, which is ≥ 2 exactly "
                "when the modified New York rule holds",
            )
        )
    return out


def _binary_fallback(endpoint: Endpoint, n_unrated: int) -> Endpoint:
    """The endpoint analysed by its 0/1 values, when some reads lack the rating their scheme asks for."""
    return replace(
        endpoint,
        call_from=1,
        rating="value",
        rating_label=f"the binary value 0/1 ({n_unrated} read(s) lack the {endpoint.rating} rating)",
    )


def _joint_scores(
    values: Mapping[tuple[str, str, str], int | None], lesion: str, joints: list[str]
) -> dict[str, int] | None:
    """Per joint, the highest value (or rating) of the lesion over its regions (None when a joint has none
    or a region's score is missing)."""
    out: dict[str, int] = {}
    for (joint, _region, les), v in values.items():
        if les == lesion:
            if v is None:
                return None
            out[joint] = max(out.get(joint, v), v)
    return out if set(out) >= set(joints) else None


def _units(endpoint: Endpoint, values: Values, joints: list[str]) -> dict[str, int]:
    """unit key -> truth of one case for one endpoint, from the reference's values."""
    scores = _joint_scores(values, endpoint.lesion, joints)
    if scores is None:
        return {}
    if endpoint.unit == "joint":
        return {joint: int(score >= endpoint.threshold) for joint, score in scores.items()}
    left, right = (scores[j] for j in joints[:2])
    return {"patient": int((left >= 2 and right >= 2) or left >= 3 or right >= 3)}


def _read_units(
    endpoint: Endpoint, values: Values, ratings: Ratings, joints: list[str]
) -> dict[str, int | None]:
    """unit key -> rating of one read for one endpoint (None where a rating the endpoint uses is missing)."""
    rated = endpoint.rating in ("confidence", "probability")
    scores = _joint_scores(values, endpoint.lesion, joints)
    if scores is None:
        return {}
    if rated:
        by_rating = _joint_scores(ratings, endpoint.lesion, joints)
        return dict(by_rating) if by_rating is not None else dict.fromkeys(scores)
    if endpoint.unit == "joint":
        return dict(scores)
    left, right = (scores[j] for j in joints[:2])
    return {"patient": max(min(left, right), max(left, right) - 1)}


@dataclass(frozen=True)
class StudyData:
    """The flat inputs of one analysis, per endpoint: (reader, unit, condition, truth, rating) rows of first
    sessions, and (reader, unit, condition, session, rating) rows of the units a reader read again in the
    same condition (intra-reader agreement). ``conditions``: the two compared, differences second − first."""

    reference: str
    design: str
    endpoints: list[Endpoint]
    rows: dict[str, list[tuple[int, str, str, int, int]]]
    conditions: tuple[str, str] = DEFAULT_CONDITIONS
    repeats: dict[str, list[tuple[int, str, str, int, int]]] = field(default_factory=dict)

    def data_hash(self) -> str:
        payload = {
            "version": ANALYSIS_VERSION,
            "reference": self.reference,
            "design": self.design,
            "conditions": list(self.conditions),
            "endpoints": [asdict(e) for e in self.endpoints],
            "rows": {k: sorted(v) for k, v in self.rows.items()},
            "repeats": {k: sorted(v) for k, v in self.repeats.items()},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _consensus_of_others(
    project: Project, reader_ids: list[int], baseline: str = UNAIDED
) -> dict[int, dict[int, Values]]:
    """Per reader: the Dawid–Skene consensus (fitted as consensus refits fit it) of the other readers'
    first-session reads in the ``baseline`` condition (unaided), lesion by lesion; a reader's own reads never
    enter their reference."""
    scheme = project.scheme.parsed
    rows = list(
        ReadingValue.objects.filter(
            reading__project=project,
            reading__superseded_by__isnull=True,
            reading__session=1,
            reading__assignment__condition=baseline,
        ).values_list("reading__case_id", "reading__reader_id", "joint", "region", "lesion", "value")
    )
    out: dict[int, dict[int, Values]] = {}
    for reader_id in reader_ids:
        values: dict[int, Values] = defaultdict(dict)
        for lesion in scheme.form_lesions:
            sub = [r for r in rows if r[1] != reader_id and r[4] == lesion]
            if not sub:
                continue
            levels = list(scheme.lesion_values(lesion))
            item_keys = sorted({(c, j, reg) for c, _, j, reg, _, _ in sub})
            item_index = {key: i for i, key in enumerate(item_keys)}
            others = sorted({u for _, u, *_ in sub})
            reader_index = {u: i for i, u in enumerate(others)}
            model = "ordinal" if scheme.lesion_is_ordinal(lesion) else "full"
            result = fit(
                np.array([item_index[(c, j, reg)] for c, _, j, reg, _, _ in sub], dtype=np.int64),
                np.array([reader_index[u] for _, u, *_ in sub], dtype=np.int64),
                np.array([levels.index(v) for *_, v in sub], dtype=np.int64),
                len(levels),
                model=model,  # type: ignore[arg-type]
                smoothing=SMOOTHING[model],
                n_items=len(item_keys),
                n_readers=len(others),
                max_iter=MAX_ITER,
                tol=TOL,
            )
            for (case_id, joint, region), label in zip(item_keys, result.labels.tolist(), strict=True):
                values[case_id][(joint, region, lesion)] = levels[label]
        out[reader_id] = values
    return out


def _reference_values(project: Project, reference: str) -> dict[int, Values]:
    out: dict[int, Values] = defaultdict(dict)
    if reference == ReaderStudyAnalysis.Reference.PHANTOM:
        for case_id, rows in project.cases.exclude(reference=None).values_list("id", "reference"):
            for row in rows or ():
                out[case_id][(row["joint"], row["region"], row["lesion"])] = int(row["value"])
    elif reference == ReaderStudyAnalysis.Reference.ADJUDICATED:
        for case_id, joint, region, lesion, value in Adjudication.objects.filter(
            project=project, superseded_by__isnull=True
        ).values_list("case_id", "joint", "region", "lesion", "value"):
            out[case_id][(joint, region, lesion)] = value
    else:
        raise InvalidInput(f"must be one of {', '.join(REFERENCES)}", field="reference")
    return out


def compared_conditions(project: Project, asked: str | None = None) -> tuple[str, str]:
    """The two conditions an analysis compares: ``asked`` ("a,b"), else the project's first two study
    conditions, else unaided and aided. InvalidInput when ``asked`` names other than two distinct ones."""
    if asked:
        names = tuple(n.strip() for n in asked.split(","))
        if len(names) != 2 or len(set(names)) != 2 or not all(names):
            raise InvalidInput("name two different conditions, e.g. unaided,aided", field="conditions")
        unknown = [n for n in names if n not in CONDITIONS]
        if unknown:
            raise InvalidInput(
                f"unknown condition {unknown[0]!r}; known: {', '.join(CONDITIONS)}", field="conditions"
            )
        return names[0], names[1]
    mine = project.study_conditions
    return (mine[0], mine[1]) if len(mine) >= 2 else DEFAULT_CONDITIONS


def study_data(project: Project, reference: str, conditions: tuple[str, str] | None = None) -> StudyData:
    """Collect the current reads of two conditions and the reference of every endpoint."""
    scheme = project.scheme.parsed
    joints = scheme.joints
    compared = conditions or compared_conditions(project)
    if reference not in REFERENCES:
        raise InvalidInput(f"must be one of {', '.join(REFERENCES)}", field="reference")
    per_reader = reference == ReaderStudyAnalysis.Reference.CONSENSUS
    common = {} if per_reader else _reference_values(project, reference)
    reads: dict[tuple[int, int, str], Values] = defaultdict(dict)
    read_ratings: dict[tuple[int, int, str], Ratings] = defaultdict(dict)
    again: dict[tuple[int, int, str, int], Values] = defaultdict(dict)  # later sessions of the same condition
    again_ratings: dict[tuple[int, int, str, int], Ratings] = defaultdict(dict)
    for (
        case_id,
        reader_id,
        cond,
        session,
        joint,
        region,
        lesion,
        value,
        rating,
    ) in ReadingValue.objects.filter(
        reading__project=project,
        reading__superseded_by__isnull=True,
        reading__assignment__condition__in=compared,
    ).values_list(
        "reading__case_id",
        "reading__reader_id",
        "reading__assignment__condition",
        "reading__session",
        "joint",
        "region",
        "lesion",
        "value",
        "rating",
    ):
        if session == 1:
            reads[(case_id, reader_id, cond)][(joint, region, lesion)] = value
            read_ratings[(case_id, reader_id, cond)][(joint, region, lesion)] = rating
        again[(case_id, reader_id, cond, session)][(joint, region, lesion)] = value
        again_ratings[(case_id, reader_id, cond, session)][(joint, region, lesion)] = rating
    readers = sorted({reader_id for _, reader_id, _ in reads})
    references = (
        _consensus_of_others(project, readers, compared[0]) if per_reader else dict.fromkeys(readers, common)
    )
    repeated = {(c, r, cond) for c, r, cond, session in again if session > 1}
    endpoints = []
    rows: dict[str, list[tuple[int, str, str, int, int]]] = {}
    repeats: dict[str, list[tuple[int, str, str, int, int]]] = {}
    for endpoint in endpoints_for(project):
        truths = {
            r: {c: _units(endpoint, v, joints) for c, v in reference_values.items()}
            for r, reference_values in references.items()
        }
        found: list[tuple[int, str, str, int, int | None]] = []
        for (case_id, reader_id, cond), values in sorted(reads.items()):
            truth = truths[reader_id].get(case_id) or {}
            ratings = read_ratings[(case_id, reader_id, cond)]
            for unit, rating in _read_units(endpoint, values, ratings, joints).items():
                if unit in truth:
                    found.append((reader_id, f"{case_id}:{unit}", cond, truth[unit], rating))
        unrated = sum(1 for *_, rating in found if rating is None)
        if unrated:  # reads from before the scheme asked for ratings: rank every read by its value instead
            endpoint = _binary_fallback(endpoint, unrated)
            found = []
            for (case_id, reader_id, cond), values in sorted(reads.items()):
                truth = truths[reader_id].get(case_id) or {}
                for unit, rating in _read_units(endpoint, values, {}, joints).items():
                    if unit in truth:
                        found.append((reader_id, f"{case_id}:{unit}", cond, truth[unit], rating))
        endpoints.append(endpoint)
        rows[endpoint.key] = [(r, u, c, t, int(v)) for r, u, c, t, v in found if v is not None]
        repeat_rows = []
        for (case_id, reader_id, cond, session), values in sorted(again.items()):
            if (case_id, reader_id, cond) not in repeated:
                continue
            ratings = again_ratings[(case_id, reader_id, cond, session)] if endpoint.rating != "value" else {}
            for unit, rating in _read_units(endpoint, values, ratings, joints).items():
                if rating is not None:
                    repeat_rows.append((reader_id, f"{case_id}:{unit}", cond, session, int(rating)))
        repeats[endpoint.key] = repeat_rows
    return StudyData(reference, project.reader_study_design, endpoints, rows, compared, repeats)


def _intra_reader(
    endpoint: Endpoint,
    repeat_rows: list[tuple[int, str, str, int, int]],
    conditions: tuple[str, str],
    names: dict[int, str],
) -> dict[str, Any]:
    """Per condition: Cohen's κ of the endpoint's call (rating ≥ call_from) between a reader's sessions of
    the same unit, pooled over readers (case-clustered bootstrap CI) and per reader."""
    out: dict[str, Any] = {}
    for cond in conditions:
        calls: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
        for reader_id, unit, c, session, rating in repeat_rows:
            if c == cond:
                calls[(reader_id, unit)][session] = int(rating >= endpoint.call_from)
        pairs = [
            (r, u, v[1], v[s]) for (r, u), v in sorted(calls.items()) if 1 in v for s in sorted(v) if s > 1
        ]
        if not pairs:
            out[cond] = {"kappa": None, "ci_lower": None, "ci_upper": None, "n_pairs": 0, "readers": []}
            continue
        groups = np.unique([u.split(":")[0] for _, u, _, _ in pairs], return_inverse=True)[1]
        pooled = cohen_kappa(
            [a for *_, a, _ in pairs],
            [b for *_, b in pairs],
            labels=[0, 1],
            n_boot=N_BOOT_INTRA,
            groups=groups,
        )
        per_reader = []
        for reader_id in sorted({r for r, *_ in pairs}):
            mine = [(a, b) for r, _, a, b in pairs if r == reader_id]
            k = cohen_kappa([a for a, _ in mine], [b for _, b in mine], labels=[0, 1])
            per_reader.append(
                {
                    "reader": names.get(reader_id, f"reader {reader_id}"),
                    "kappa": k.value,
                    "n_pairs": len(mine),
                }
            )
        out[cond] = {
            "kappa": pooled.value,
            "ci_lower": pooled.ci_low,
            "ci_upper": pooled.ci_high,
            "n_pairs": len(pairs),
            "readers": per_reader,
        }
    return out


def _analysis(result: MrmcResult) -> dict[str, Any]:
    out = result.to_dict()
    out.pop("covariance", None)
    return out


def _endpoint_result(
    endpoint: Endpoint,
    rows: list[tuple[int, str, str, int, int]],
    names: dict[int, str],
    per_reader: bool,
    compared: tuple[str, str] = DEFAULT_CONDITIONS,
    repeat_rows: list[tuple[int, str, str, int, int]] | None = None,
) -> dict:
    mrmc_order = (compared[1], compared[0])  # differences: the second condition − the first
    base: dict[str, Any] = {
        "key": endpoint.key,
        "label": endpoint.label,
        "unit": endpoint.unit,
        "threshold": endpoint.threshold,
        "call_from": endpoint.call_from,
        "rating": endpoint.rating,
        "rating_label": endpoint.rating_label,
    }
    base["intra_reader"] = _intra_reader(endpoint, repeat_rows or [], compared, names)
    if not rows:
        return {**base, "error": "no reads of this endpoint have a reference value yet"}
    reader = np.array([names.get(r, f"reader {r}") for r, *_ in rows])
    unit = np.array([u for _, u, *_ in rows])
    condition = np.array([c for _, _, c, _, _ in rows])
    truth = np.array([t for *_, t, _ in rows], dtype=np.int64)
    rating = np.array([v for *_, v in rows], dtype=np.float64)
    both = {r for r in set(reader.tolist()) if set(compared) <= set(condition[reader == r].tolist())}
    keep = np.isin(reader, sorted(both))
    reader, unit, condition, truth, rating = (
        reader[keep],
        unit[keep],
        condition[keep],
        truth[keep],
        rating[keep],
    )
    base.update(
        n_units=len(set(unit.tolist())),
        n_positive=len({u for u, t in zip(unit.tolist(), truth.tolist(), strict=True) if t}),
        n_readers=len(both),
        n_reads=len(unit),
    )
    args = (reader, unit, condition, truth, rating)
    try:
        analyses = {
            "auc": _analysis(
                mrmc(*args, metric="auc", cov="jackknife", conditions=mrmc_order, truth_by_reader=per_reader)
            ),
            "auc_fixed_readers": _analysis(
                mrmc(
                    *args,
                    metric="auc",
                    cov="jackknife",
                    readers="fixed",
                    conditions=mrmc_order,
                    truth_by_reader=per_reader,
                )
            ),
        }
        for metric in ("sensitivity", "specificity"):
            if per_reader:  # their case sets would differ between readers
                analyses[metric] = {"error": f"{metric} needs a reference common to all readers"}
                continue
            try:
                analyses[metric] = _analysis(
                    mrmc(*args, metric=metric, threshold=endpoint.call_from, conditions=mrmc_order)  # type: ignore[arg-type]
                )
            except ValueError as exc:
                analyses[metric] = {"error": str(exc)}
    except ValueError as exc:
        return {**base, "error": str(exc)}
    curves: dict[str, Any] = {}
    for cond in compared:
        reader_curves = {}
        for name in sorted(both):
            sel = (reader == name) & (condition == cond)
            fpr, tpr = roc_points(truth[sel].astype(bool), rating[sel])
            reader_curves[name] = {"fpr": np.round(fpr, 6).tolist(), "tpr": np.round(tpr, 6).tolist()}
        grid, mean_tpr = average_roc(
            [(np.array(c["fpr"]), np.array(c["tpr"])) for c in reader_curves.values()]
        )
        curves[cond] = {
            "readers": reader_curves,
            "average": {"fpr": grid.round(6).tolist(), "tpr": mean_tpr.round(6).tolist()},
        }
    change = agreement_change(
        reader,
        unit,
        condition,
        (rating >= endpoint.call_from).astype(int),
        conditions=compared,
        n_boot=N_BOOT,
        seed=0,
    )
    return {**base, "analyses": analyses, "roc": curves, "agreement": asdict(change)}


def reader_study_analyse(data: StudyData, names: dict[int, str]) -> dict[str, Any]:
    """The whole result document of one analysis (pure: no database access)."""
    return {
        "version": ANALYSIS_VERSION,
        "reference": data.reference,
        "reference_label": ReaderStudyAnalysis.Reference(data.reference).label,
        "design": data.design,
        "conditions": list(data.conditions),
        "condition_labels": [condition_label(c) for c in data.conditions],
        "comparison": f"{data.conditions[1]} - {data.conditions[0]}",
        "endpoints": [
            _endpoint_result(
                e,
                data.rows[e.key],
                names,
                data.reference == ReaderStudyAnalysis.Reference.CONSENSUS,
                data.conditions,
                data.repeats.get(e.key, []),
            )
            for e in data.endpoints
        ],
    }


def reader_study_lookup(
    *, project: Project, reference: str, conditions: tuple[str, str] | None = None
) -> tuple[str, ReaderStudyAnalysis | None]:
    """The hash of the current inputs and the stored analysis of exactly those inputs, if there is one."""
    digest = study_data(project, reference, conditions).data_hash()
    return digest, ReaderStudyAnalysis.objects.filter(
        project=project, reference=reference, data_hash=digest
    ).first()


def reader_study_compute(
    *, project_id: int, reference: str, conditions: tuple[str, str] | list[str] | None = None
) -> ReaderStudyAnalysis | None:
    """Analyse (or reuse, when the inputs are unchanged) a project's reader study; None if no project."""
    started = time.perf_counter()
    project = Project.objects.select_related("scheme").filter(pk=project_id).first()
    if project is None:
        return None
    data = study_data(project, reference, tuple(conditions) if conditions else None)  # type: ignore[arg-type]
    digest = data.data_hash()
    if done := ReaderStudyAnalysis.objects.filter(
        project=project, reference=reference, data_hash=digest
    ).first():
        return done
    result = reader_study_analyse(data, reader_pseudonyms(project=project))
    result.update(data_hash=digest, computed_at=timezone.now().isoformat())
    try:
        with transaction.atomic():
            analysis = ReaderStudyAnalysis.objects.create(
                project=project,
                reference=reference,
                data_hash=digest,
                result=result,
                duration_s=round(time.perf_counter() - started, 3),
            )
            audit_record(
                actor=None,
                action="reader_study.compute",
                target=analysis,
                project=project,
                data={"reference": reference, "conditions": list(data.conditions), "data_hash": digest},
            )
    except IntegrityError:  # a concurrent task stored the same inputs first
        return ReaderStudyAnalysis.objects.get(project=project, reference=reference, data_hash=digest)
    return analysis


def reader_study_enqueue(
    *, project: Project, reference: str, conditions: tuple[str, str] | None = None
) -> None:
    """Queue the analysis on the worker with the current transaction (outbox)."""
    if conditions is None:
        outbox_send("labeling.tasks.reader_study_compute_task", args=(project.pk, reference))
    else:
        outbox_send(
            "labeling.tasks.reader_study_compute_task", args=(project.pk, reference, list(conditions))
        )


CSV_HEADER = (
    "endpoint",
    "metric",
    "reference",
    "rating",
    "row",
    "reader",
    "condition",
    "comparison",
    "estimate",
    "std_err",
    "df",
    "ci_lower",
    "ci_upper",
    "statistic",
    "p_value",
    "conditions",
)


def reader_study_csv(result: dict[str, Any]) -> str:
    """Every estimate of a result as CSV: condition means, differences, per-reader values and differences,
    intra-reader κ per condition; ``rating`` says what each endpoint's reads were ranked by (confidence,
    probability, grade or 0/1 value), ``conditions`` which two conditions were compared."""
    rows: list[list[Any]] = []
    ref = result["reference"]
    compared = " vs ".join(result.get("conditions") or DEFAULT_CONDITIONS)
    for ep in result["endpoints"]:
        rating = ep.get("rating_label", "")
        if "error" in ep:
            rows.append([ep["key"], "", ref, rating, "error", "", "", "", ep["error"], *[""] * 6])
        for metric, a in (ep.get("analyses") or {}).items():
            if "error" in a:
                rows.append([ep["key"], metric, ref, rating, "error", "", "", "", a["error"], *[""] * 6])
                continue
            for c in a["condition_estimates"]:
                rows.append(
                    [
                        ep["key"],
                        metric,
                        ref,
                        rating,
                        "condition",
                        "",
                        c["condition"],
                        "",
                        c["estimate"],
                        c["std_err"],
                        c["df"],
                        c["ci_lower"],
                        c["ci_upper"],
                        "",
                        "",
                    ]
                )
            for d in a["differences"]:
                rows.append(
                    [
                        ep["key"],
                        metric,
                        ref,
                        rating,
                        "difference",
                        "",
                        "",
                        f"{d['first']} - {d['second']}",
                        d["estimate"],
                        d["std_err"],
                        d["df"],
                        d["ci_lower"],
                        d["ci_upper"],
                        d["statistic"],
                        d["p_value"],
                    ]
                )
            for d in a["reader_differences"]:
                rows.append(
                    [
                        ep["key"],
                        metric,
                        ref,
                        rating,
                        "reader difference",
                        d["reader"],
                        "",
                        f"{d['first']} - {d['second']}",
                        d["estimate"],
                        d["std_err"],
                        "",
                        d["ci_lower"],
                        d["ci_upper"],
                        d["statistic"],
                        d["p_value"],
                    ]
                )
            for r in a["reader_estimates"]:
                rows.append(
                    [
                        ep["key"],
                        metric,
                        ref,
                        rating,
                        "reader",
                        r["reader"],
                        r["condition"],
                        "",
                        r["estimate"],
                        r["std_err"],
                        "",
                        r["ci_lower"],
                        r["ci_upper"],
                        "",
                        "",
                    ]
                )
        for cond, intra in (ep.get("intra_reader") or {}).items():
            head = [ep["key"], "intra_reader_kappa", ref, rating, "intra-reader"]
            if intra["n_pairs"]:
                ci = [intra["ci_lower"], intra["ci_upper"]]
                rows.append([*head, "", cond, "", intra["kappa"], "", "", *ci, "", ""])
            for r in intra["readers"]:
                rows.append([*head, r["reader"], cond, "", r["kappa"], *[""] * 6])
    return csv_text(CSV_HEADER, ([*("" if v is None else v for v in row), compared] for row in rows))
