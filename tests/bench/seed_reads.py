"""Cases read in bulk for the benches: imageless studies whose readers all submitted a full reading, each
value the case's truth (prevalence 0.15) flipped with probability ``flip``."""

from __future__ import annotations

from typing import Any


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
