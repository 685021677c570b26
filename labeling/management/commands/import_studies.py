"""``manage.py import_studies PATH|URL [--project ID] [--query K=V ...]``: import DICOM studies with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.dicom import DicomStoreError, DicomStoreUnavailable
from labeling.dicom.errors import IMAGE_SERVER_UNAVAILABLE
from labeling.exceptions import DomainError
from labeling.models import Project
from labeling.services.ingest import import_job_create, import_job_run
from labeling.services.uploads import import_params_for_path


class Command(BaseCommand):
    help = (
        "Import DICOM studies from a folder, a zip, a file or a DICOMweb server (http[s]://…, searched with "
        "--query K=V filters); validate, store them in the configured store, and optionally add them as cases."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="a folder, a .zip, a DICOM file, or a DICOMweb root URL")
        parser.add_argument("--project", type=int, help="add each study as a case of this project")
        parser.add_argument(
            "--query",
            action="append",
            default=[],
            metavar="K=V",
            help="QIDO filter, e.g. PatientID=PHANTOM-*",
        )
        parser.add_argument("--user", default=None, help="record the import as done by this user")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        project = None
        if options["project"] is not None:
            project = Project.objects.select_related("scheme").filter(pk=options["project"]).first()
            if project is None:
                raise CommandError(f"no project {options['project']}")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        filters = {}
        for item in options["query"]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--query takes K=V, not {item!r}")
            filters[key] = value
        source: str = options["source"]
        if source.startswith(("http://", "https://")):
            params: dict[str, Any] = {"url": source.rstrip("/"), "filters": filters}
            label = f"dicomweb:{source}"
        else:
            path = Path(source).resolve()
            if not path.exists():
                raise CommandError(f"{path} does not exist")
            if filters:
                raise CommandError("--query applies to a DICOMweb URL only")
            params, label = import_params_for_path(path), f"folder:{path}"
        job = import_job_create(actor=actor, project=project, source=label, params=params)
        bar = tqdm(total=0, unit="file", desc="import", disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            job = import_job_run(job_id=job.pk, progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except DicomStoreUnavailable as exc:
            raise CommandError(
                f"{IMAGE_SERVER_UNAVAILABLE}: the import stopped; run the same command again once it answers "
                f"(studies already imported are kept and skipped): {exc}"
            ) from exc
        except DicomStoreError as exc:  # a full disk, a store that refuses: the reason as it is
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self._print(job.report, options["json"])

    def _print(self, report: dict[str, Any], as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(report, indent=1))
            return
        self.stdout.write(
            f"imported {len(report['imported'])} studies, skipped {len(report['skipped'])} already known, "
            f"created {len(report['cases'])} cases, {len(report['problems'])} problems"
        )
        for problem in report["problems"]:
            self.stderr.write(f"  {problem['path']}: {problem['reason']}")
