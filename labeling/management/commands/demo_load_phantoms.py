"""``manage.py demo_load_phantoms``: phantom studies, cases, assignments and simulated readings for the demo.

Generates MRI and CT phantoms with ``ml.phantoms`` (cached under ``VAR_DIR/phantoms``), imports them into the
configured DICOM store (each CT study with its pelvis bone SEG, which the CT grader trains its segmenter on) as
cases of the demo projects ("SIJ MRI demo", "SIJ CT demo", made by ``demo_setup``), generates assignments,
submits the simulated readings of readers R1..R3 as reader1..reader3 (session 2 where the generator planned a
blinded repeat), and refits the consensus. Safe to run again: nothing is added twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from labeling.exceptions import DomainError
from labeling.models import Assignment, Case, Instance, Project
from labeling.schemes import SchemeError
from labeling.services.assignments import assignments_generate
from labeling.services.consensus import consensus_refit_project
from labeling.services.deidentification import stored_uid
from labeling.services.ingest import dicom_files_under, import_paths
from labeling.services.readings import reading_submit

PROJECTS = {"mri": "SIJ MRI demo", "ct": "SIJ CT demo"}
READERS = {"R1": "reader1", "R2": "reader2", "R3": "reader3"}


class Command(BaseCommand):
    help = __doc__.split("\n")[0].split(": ", 1)[1]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mri", type=int, default=24)
        parser.add_argument("--ct", type=int, default=24)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--out", type=Path, default=None, help="phantom folder (default VAR_DIR/phantoms)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if Project.objects.filter(name__in=PROJECTS.values()).count() != len(PROJECTS):
            call_command("demo_setup", stdout=self.stdout)
        for key in (
            "data_folder_in",
            "data_folder_out",
            "processed_folder",
            "control_folder",
        ):  # embedded broker
            if folder := getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get(key):
                Path(folder).mkdir(parents=True, exist_ok=True)
        if str(settings.CELERY_RESULT_BACKEND).startswith("file://"):
            Path(str(settings.CELERY_RESULT_BACKEND).removeprefix("file://")).mkdir(
                parents=True, exist_ok=True
            )
        out = options["out"] or Path(settings.VAR_DIR) / "phantoms" / f"seed-{options['seed']}"
        manifest = self._phantoms(out, options["mri"], options["ct"], options["seed"])
        admin = get_user_model().objects.get(username="admin")
        for kind, name in PROJECTS.items():
            project = Project.objects.select_related("scheme").get(name=name)
            studies = [s for s in manifest["studies"] if s["kind"] == kind]
            self._import(admin, project, out, studies)
            self._references(project, out, studies)
            assignments_generate(actor=admin, project=project, seed=options["seed"], gold_fraction=0.2)
            self._readings(project, out, {stored_uid(project, s["study_instance_uid"]) for s in studies})
            runs = consensus_refit_project(project_id=project.pk)
            self.stdout.write(f"{name}: {project.cases.count()} cases, {len(runs)} consensus runs")

    def _phantoms(self, out: Path, n_mri: int, n_ct: int, seed: int) -> dict[str, Any]:
        manifest_path = out / "manifest.json"
        if manifest_path.exists():
            manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            if manifest["arguments"].get("mri") == n_mri and manifest["arguments"].get("ct") == n_ct:
                return manifest
        try:
            from ml.phantoms.cli import generate
        except ImportError as exc:  # pragma: no cover - ml.phantoms is part of the repository
            raise CommandError(f"ml.phantoms is not available: {exc}") from exc
        self.stdout.write(f"generating {n_mri} MRI and {n_ct} CT phantoms in {out} …")
        return generate(out, n_mri=n_mri, n_ct=n_ct, seed=seed, readers=len(READERS), sessions=2)

    def _import(self, admin: Any, project: Project, out: Path, studies: list[dict[str, Any]]) -> None:
        folders = [out / s["series"][key]["folder"] for s in studies for key in s["series"]]
        paths = [p for folder in folders for p in dicom_files_under(folder)]
        bar = tqdm(total=len(paths), unit="file", desc=f"import {project.name}", disable=None)

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        report = import_paths(
            actor=admin, paths=paths, project=project, source=f"phantoms:{out}", root=out, progress=progress
        )
        bar.close()
        self.stdout.write(
            f"{project.name}: imported {len(report.imported)}, skipped {len(report.skipped)}, "
            f"{len(report.problems)} problems"
        )
        for problem in report.problems:
            self.stderr.write(f"  {problem['path']}: {problem['reason']}")

    def _references(self, project: Project, out: Path, studies: list[dict[str, Any]]) -> None:
        """Phantoms have known truth: keep it as each case's reference (never shown to readers), so the
        generator can mix gold cases into the worklists and models have gold to be judged on."""
        from ml.phantoms import load_truth

        for study in studies:
            truth = load_truth(out / study["truth"])
            Case.objects.filter(
                project=project,
                study__study_uid=stored_uid(project, truth.study_instance_uid),
                reference__isnull=True,
            ).update(reference=truth.values())

    @staticmethod
    def _stored_contour(project: Project, contour: dict[str, Any], slices: dict[str, int]) -> dict[str, Any]:
        """A simulated contour, naming the series and instance by the UIDs they were stored under."""
        out = {**contour, "series_uid": stored_uid(project, contour["series_uid"])}
        if sop := contour.get("sop_instance_uid"):
            out["sop_instance_uid"] = stored_uid(project, sop)
        out["slice_index"] = slices.get(out.get("sop_instance_uid", ""), contour["slice_index"])
        return out

    def _readings(self, project: Project, out: Path, study_uids: set[str]) -> None:
        records = json.loads((out / "readings" / "readings.json").read_text())
        users = {r.username: r for r in get_user_model().objects.filter(username__in=READERS.values())}
        slices = dict(
            Instance.objects.filter(series__study__study_uid__in=study_uids).values_list(
                "sop_uid", "slice_index"
            )
        )
        submitted = skipped = 0
        for record in records:
            reader = users.get(READERS.get(record["reader"], ""))
            study_uid = stored_uid(project, record["study_instance_uid"])  # the phantom's own UIDs
            if reader is None or study_uid not in study_uids:
                continue
            assignment = Assignment.objects.filter(
                project=project,
                case__study__study_uid=study_uid,
                reader=reader,
                session=record["session"],
                aided=False,
            ).first()
            if assignment is None or assignment.status != Assignment.Status.OPEN:
                skipped += 1  # no repeat planned for this case, or read already
                continue
            payload = record["payload"]
            contours = [self._stored_contour(project, c, slices) for c in payload.get("contours", [])]
            try:
                reading_submit(
                    actor=reader, assignment=assignment, values=payload["values"], contours=contours
                )
                submitted += 1
            except (DomainError, SchemeError) as exc:
                self.stderr.write(f"  reading of {record['study_id']} by {reader.username}: {exc}")
        self.stdout.write(f"{project.name}: submitted {submitted} simulated readings ({skipped} not planned)")
