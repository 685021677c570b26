"""``manage.py export_project ID OUT_DIR``: readings, consensus and adjudications as CSV, readings as DICOM SR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from labeling.models import Project
from labeling.services.exports import project_export


class Command(BaseCommand):
    help = "Export a whole project: readings.csv, consensus.csv, adjudications.csv and sr/*.dcm (TID 1500)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", type=int)
        parser.add_argument("out_dir", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.select_related("scheme").get(pk=options["project"])
        summary = project_export(actor=None, project=project, folder=options["out_dir"])
        self.stdout.write(f"wrote CSVs and {summary['sr']} SR files to {summary['folder']}")
