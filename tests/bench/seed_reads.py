"""The bench projects' bulk: worklists of imageless studies, and cases read in bulk (every reader submitted a
full reading, each value the case's truth, prevalence 0.15, flipped with probability ``flip``)."""

from __future__ import annotations

from typing import Any


def worklists(
    project: Any,
    readers: list[Any],
    image_cases: list[Any],
    n_bulk: int,
    *,
    rng: Any,
    uid_prefix: str,
    label: str,
) -> None:
    """Every reader's worklist: ``image_cases`` first, in their order, then ``n_bulk`` new imageless studies
    (UIDs ``<uid_prefix><i>``, case labels ``<label><i>``), up to 3 readers each, in a random order."""
    from labeling.models import Assignment, Case, Study

    Assignment.objects.bulk_create(
        Assignment(project=project, case=c, reader=r, order_key=i)
        for r in readers
        for i, c in enumerate(image_cases)
    )
    studies = Study.objects.bulk_create(
        Study(study_uid=f"{uid_prefix}{i}", modality="MR") for i in range(n_bulk)
    )
    cases = Case.objects.bulk_create(
        Case(project=project, study=st, label=f"{label}{i}") for i, st in enumerate(studies)
    )
    Assignment.objects.bulk_create(
        (
            Assignment(
                project=project,
                case=c,
                reader=readers[(i * 3 + k) % len(readers)],
                order_key=1000 + int(rng.integers(1 << 40)),
            )
            for i, c in enumerate(cases)
            for k in range(min(3, len(readers)))
        ),
        batch_size=5000,
    )


def submitted_reads(
    project: Any, readers: list[Any], n_cases: int, *, rng: Any, flip: float, uid_prefix: str, label: str = ""
) -> list[Any]:
    """Create ``n_cases`` cases of ``project`` read by every one of ``readers`` (one session); return them.

    Study UIDs are ``<uid_prefix><i>``; case labels ``<label><i>`` when ``label`` is given."""
    from labeling.models import Assignment, Case, Reading, ReadingValue, Study

    form = project.scheme.parsed.form_items
    studies = Study.objects.bulk_create(
        Study(study_uid=f"{uid_prefix}{i}", modality="MR") for i in range(n_cases)
    )
    cases = Case.objects.bulk_create(
        Case(project=project, study=s, **({"label": f"{label}{i}"} if label else {}))
        for i, s in enumerate(studies)
    )
    assignments = Assignment.objects.bulk_create(
        Assignment(project=project, case=c, reader=u, status="submitted") for c in cases for u in readers
    )
    readings = Reading.objects.bulk_create(
        Reading(
            assignment=a,
            project=project,
            case_id=a.case_id,
            reader_id=a.reader_id,
            session=1,
            scheme=project.scheme,
        )
        for a in assignments
    )
    truth = rng.random((n_cases, len(form))) < 0.15
    flips = rng.random((len(readings), len(form))) < flip
    ReadingValue.objects.bulk_create(
        (
            ReadingValue(
                reading=r,
                joint=item.joint,
                region=item.region,
                lesion=item.lesion,
                value=int(truth[i // len(readers), j] ^ flips[i, j]),
            )
            for i, r in enumerate(readings)
            for j, item in enumerate(form)
        ),
        batch_size=20000,
    )
    return cases
