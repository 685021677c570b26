from typing import Any

from django.core.management.base import BaseCommand

from labeling.services.schemes import schemes_load


class Command(BaseCommand):
    help = "Load the grading scheme files (labeling/schemes/*.yaml) into the database; idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        for scheme in schemes_load():
            self.stdout.write(f"{scheme} ({len(scheme.parsed.form_items)} items per reading)")
