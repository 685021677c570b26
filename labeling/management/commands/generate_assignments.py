from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.exceptions import DomainError
from labeling.models import Project
from labeling.services.assignments import assignments_generate


class Command(BaseCommand):
    help = "Top up a project's assignments: k readers per case, gold cases, blinded repeats (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--readers-per-case", type=int)
        parser.add_argument("--gold-fraction", type=float)
        parser.add_argument("--repeat-fraction", type=float)
        parser.add_argument("--washout-days", type=int)
        parser.add_argument("--washout-cases", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["project"]
        project = Project.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
        project = project or Project.objects.filter(name=ref).first()
        if project is None:
            raise CommandError(f"no project {ref!r}")
        keys = ("readers_per_case", "gold_fraction", "repeat_fraction", "washout_days", "washout_cases")
        try:
            result = assignments_generate(
                actor=None,
                project=project,
                seed=options["seed"],
                **{k: options[k] for k in keys if options[k] is not None},
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{project}: {result.created} first reads and {result.created_repeats} repeats created, "
            f"{result.gold_cases} gold cases, load per reader {min(result.loads.values())}–{max(result.loads.values())}"
        )
