"""``manage.py demo_reader_study``: an AI-aided CT reader study for the demo, analysed at once.

The cases of the CT demo project (phantoms, with their truth as reference) become the cases of "SIJ CT
reader study demo", a sequential design as in paper (b): reader1 and reader2 grade each case unaided, then
again with the AI's pre-read. The readers are simulated: unaided, a joint's mNY grade is one off in 40% of
joints; the simulated AI is one off in 15%, and an aided reader takes the AI's grade where they differ in 70%
of joints, so accuracy rises with the AI's output. The analysis (phantom reference) is computed and stored, so
/manage/projects/{id}/reader-study and the report show the gain with its CI. Safe to run again.
"""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Assignment, Case, Membership, Project
from labeling.selectors import worklist_for_reader
from labeling.services.assignments import assignments_generate
from labeling.services.projects import membership_add, project_create
from labeling.services.reader_study import reader_study_compute
from labeling.services.readings import reading_submit

NAME = "SIJ CT reader study demo"
P_UNAIDED, P_AI, P_ADOPT = 0.40, 0.15, 0.70


def _off(rng: random.Random, grade: int, p: float) -> int:
    return min(4, max(0, grade + rng.choice((-1, 1)))) if rng.random() < p else grade


class Command(BaseCommand):
    help = __doc__.split("\n")[0].split(": ", 1)[1]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", default="SIJ CT demo", help="project whose CT cases are reused")
        parser.add_argument("--readers", default="reader1,reader2")
        parser.add_argument("--seed", type=int, default=14)

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects
        admin = users.filter(username="admin").first()
        source = Project.objects.filter(name=options["source"]).first()
        if admin is None or source is None:
            raise CommandError(
                f"run demo_setup and demo_load_phantoms first (no admin or no {options['source']!r})"
            )
        project = Project.objects.filter(name=NAME).first()
        if project is None:
            project = project_create(
                actor=admin,
                name=NAME,
                scheme=source.scheme,
                readers_per_case=2,
                ai_aided_reads=True,
                description="AI-aided vs unaided grading by two simulated readers (issue 14)",
            )
        names = [n for n in options["readers"].split(",") if n]
        for name in names:
            if not project.memberships.filter(user__username=name, role=Membership.Role.READER).exists():
                membership_add(actor=admin, project=project, username=name, role=Membership.Role.READER)
        truth: dict[int, dict[str, int]] = {}
        labels: dict[int, str] = {}
        for case in source.cases.exclude(reference=None).select_related("study"):
            mine, _ = Case.objects.get_or_create(
                project=project, study=case.study, defaults={"label": case.label, "reference": case.reference}
            )
            labels[mine.pk] = mine.label
            truth[mine.pk] = {
                r["joint"]: r["value"] for r in mine.reference or () if r["lesion"] == "mny_grade"
            }
        assignments_generate(actor=admin, project=project, seed=options["seed"], readers_per_case=len(names))
        seed = options["seed"]
        submitted = 0
        for name in names:
            reader = users.get(username=name)
            for _ in range(4 * len(truth) + 4):  # bounded: each case once unaided, once aided
                a = worklist_for_reader(reader=reader, project_id=project.pk).first()
                if a is None:
                    break
                # a read's errors follow its reader, case and condition, not the database's ids (nor the
                # worklist's order, drawn from them), so every database gets the same study
                label = labels[a.case_id]
                rng = random.Random(f"{seed}:{name}:{label}:{a.aided}")
                values = []
                for joint, grade in truth[a.case_id].items():
                    own = _off(rng, grade, P_UNAIDED)
                    if a.aided:
                        model = _off(random.Random(f"{seed}:ai:{label}:{joint}"), grade, P_AI)
                        own = model if own != model and rng.random() < P_ADOPT else own
                    values.append({"joint": joint, "region": "joint", "lesion": "mny_grade", "value": own})
                reading_submit(actor=reader, assignment=a, values=values)
                submitted += 1
        analysis = reader_study_compute(project_id=project.pk, reference="phantom")
        done = Assignment.objects.filter(project=project, status=Assignment.Status.SUBMITTED).count()
        self.stdout.write(f"{NAME}: {len(truth)} cases, {done} reads ({submitted} new)")
        for ep in analysis.result["endpoints"] if analysis else []:
            if "analyses" in ep:
                d = ep["analyses"]["auc"]["differences"][0]
                self.stdout.write(
                    f"  {ep['label']}: AUC aided - unaided {d['estimate']:+.3f} "
                    f"(95% CI {d['ci_lower']:+.3f} to {d['ci_upper']:+.3f}, p = {d['p_value']:.3f})"
                )
        self.stdout.write(f"  report: /manage/projects/{project.pk}/reader-study")
