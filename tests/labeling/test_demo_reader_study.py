"""``manage.py demo_reader_study``: the demo's AI-aided CT reader study shows a gain with its CI (issue 14)."""

from __future__ import annotations

import io
import random

from django.core.management import call_command

from labeling.models import Case, Membership, Project, ReaderStudyAnalysis
from tests.labeling.factories import MembershipFactory, ProjectFactory, StudyFactory, UserFactory, scheme


def test_the_demo_reader_study_is_read_analysed_and_shows_the_gain(db):
    source = ProjectFactory(name="SIJ CT demo", scheme=scheme("ct_sij"))
    UserFactory(username="admin", is_staff=True)
    for name in ("reader1", "reader2"):
        MembershipFactory(project=source, user=UserFactory(username=name), role=Membership.Role.READER)
    rng = random.Random(3)
    for i in range(24):
        ref = [
            {"joint": j, "region": "joint", "lesion": "mny_grade", "value": rng.choice((0, 1, 2, 3, 4))}
            for j in ("left", "right")
        ]
        Case.objects.create(project=source, study=StudyFactory(modality="CT"), label=f"ct-{i}", reference=ref)

    out = io.StringIO()
    call_command("demo_reader_study", stdout=out)
    project = Project.objects.get(name="SIJ CT reader study demo")
    assert project.ai_aided_reads and project.cases.count() == 24
    assert project.readings.filter(assignment__aided=True).count() == 48
    assert project.readings.filter(assignment__aided=False).count() == 48
    analysis = ReaderStudyAnalysis.objects.get(project=project, reference="phantom")
    joint = next(e for e in analysis.result["endpoints"] if e["key"] == "mny_grade_ge2")
    diff = joint["analyses"]["auc"]["differences"][0]
    assert diff["estimate"] > 0  # the simulated readers improve with the AI
    assert f"AUC aided - unaided {diff['estimate']:+.3f}" in out.getvalue()

    call_command("demo_reader_study", stdout=io.StringIO())  # again: nothing added twice
    assert project.readings.count() == 96 and ReaderStudyAnalysis.objects.filter(project=project).count() == 1

    # the same study once more, under other case ids and assignment keys: the same reads, the same result
    # (it depended on the ids, so the test above passed or failed with the tests that ran before it)
    Project.objects.filter(pk=project.pk).update(name="SIJ CT reader study demo, first")
    again = io.StringIO()
    call_command("demo_reader_study", stdout=again)
    second = Project.objects.get(name="SIJ CT reader study demo")
    assert set(second.cases.values_list("pk", flat=True)).isdisjoint(
        project.cases.values_list("pk", flat=True)
    )
    assert _without_report_link(again.getvalue()) == _without_report_link(out.getvalue())


def _without_report_link(printed: str) -> str:
    return "\n".join(line for line in printed.splitlines() if "report:" not in line)
