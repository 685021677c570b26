"""Seed data for the browser tests and for trying the front end by hand: phantom studies, users, projects.

``python -m tests.e2e.seed DIR`` (with DJANGO_SETTINGS_MODULE and DATABASE_URL set) writes phantoms to DIR if it
holds none, registers them and creates the users and projects below. The DICOM store must be the local folder
DIR (``DICOM_FOLDER=DIR``) so that Concord's DICOMweb endpoint serves the files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

PASSWORD = "concord-e2e-pw"
READERS = ("reader1", "reader2", "reader3")
TRAINING = "training"  # sub-folder of the phantoms: the training project's studies, with simulated readings


@dataclass
class Seeded:
    phantoms: Path
    mri_project: int
    ct_project: int
    mri_study: str
    ct_study: str
    mri_truth: dict[str, Any]
    assignments: dict[str, str] = field(default_factory=dict)  # "mri:reader1" → assignment key
    series: dict[str, str] = field(default_factory=dict)  # "T1" → series uid
    train_project: int = 0
    train_cases: list[int] = field(default_factory=list)  # the last one is gold
    train_reads: dict[str, str] = field(
        default_factory=dict
    )  # "sim-R1" → a submitted (unaided) assignment key


def write_phantoms(out: Path, seed: int = 7) -> None:
    """One MRI and one CT study for the readers; three MRI studies read by three simulated readers (in
    ``out/training``) for the training project."""
    for folder, args in [
        (out, ["--mri", "1", "--ct", "1", "--seed", str(seed)]),
        (out / TRAINING, ["--mri", "3", "--ct", "0", "--seed", "11", "--readers", "3", "--sessions", "1"]),
    ]:
        if not (folder / "manifest.json").is_file():
            subprocess.run(
                [sys.executable, "-m", "ml.phantoms", *args, "--out", str(folder)],
                check=True,
                capture_output=True,
            )


def _series_rows(folder: Path, description: str) -> dict[str, Any]:
    """Series + instances for study_register, slice_index ordered along the slice normal."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]
    iop = np.asarray(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    headers.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, dtype=float), normal)))
    return {
        "series_uid": str(headers[0].SeriesInstanceUID),
        "modality": str(headers[0].Modality),
        "description": description,
        "frame_of_reference_uid": str(getattr(headers[0], "FrameOfReferenceUID", "")),
        "instances": [
            {
                "sop_uid": str(d.SOPInstanceUID),
                "sop_class_uid": str(d.SOPClassUID),
                "instance_number": int(d.InstanceNumber),
                "slice_index": i,
                "position": [float(v) for v in d.ImagePositionPatient],
            }
            for i, d in enumerate(headers)
        ],
    }


def seed(phantoms: Path) -> Seeded:
    from django.contrib.auth import get_user_model

    from labeling.models import Assignment, Case, GradingScheme, Membership
    from labeling.services.projects import membership_add, project_create
    from labeling.services.schemes import schemes_load
    from labeling.services.studies import study_register

    write_phantoms(phantoms)
    manifest = json.loads((phantoms / "manifest.json").read_text())
    schemes_load()
    users = {}
    for name, staff in [("admin", True), ("adjudicator", False), *((r, False) for r in READERS)]:
        user, _ = get_user_model().objects.get_or_create(username=name, defaults={"is_staff": staff})
        user.set_password(PASSWORD)
        user.save()
        users[name] = user
    out: dict[str, Any] = {"assignments": {}, "series": {}}
    for entry in manifest["studies"]:
        kind = entry["kind"]
        study_uid = entry["study_instance_uid"]
        series = []
        for desc, info in entry["series"].items():
            if desc == "SEG":
                continue
            rows = _series_rows(phantoms / info["folder"], "CT SIJ" if kind == "ct" else desc)
            series.append(rows)
            out["series"][rows["description"]] = rows["series_uid"]
        study = study_register(
            actor=None,
            study_uid=study_uid,
            modality="CT" if kind == "ct" else "MR",
            patient_id=entry["patient_id"],
            series=series,
        )
        scheme = GradingScheme.objects.get(name="ct_sij" if kind == "ct" else "mri_sij", version=1)
        project = project_create(
            actor=users["admin"],
            name=f"E2E {kind.upper()}",
            scheme=scheme,
            readers_per_case=3,
            adjudication_threshold=1.0,  # every item the readers disagree on goes to the queue
        )
        for name in READERS:
            membership_add(actor=users["admin"], project=project, username=name, role=Membership.Role.READER)
        membership_add(
            actor=users["admin"], project=project, username="adjudicator", role=Membership.Role.ADJUDICATOR
        )
        case = Case.objects.create(project=project, study=study, label=f"{kind}-1")
        for name in READERS:
            a = Assignment.objects.create(project=project, case=case, reader=users[name], session=1)
            out["assignments"][f"{kind}:{name}"] = a.key
        out[f"{kind}_project"] = project.pk
        out[f"{kind}_study"] = study_uid
        if kind == "mri":
            out["mri_truth"] = json.loads((phantoms / entry["truth"]).read_text())
    out["train_project"], out["train_cases"], out["train_reads"] = _seed_training_project(
        phantoms / TRAINING, users
    )
    return Seeded(phantoms=phantoms, **out)


def _seed_training_project(folder: Path, users: dict[str, Any]) -> tuple[int, list[int], dict[str, str]]:
    """An MRI project whose three cases simulated readers (users sim-R1, sim-R2 …, apart from the browser's
    readers) have read, contours included, with its consensus fitted: two cases to train on, the last one
    gold (its truth as reference). The project has AI-aided reads, so each of those readers has an aided
    second read of each case they read waiting."""
    from django.contrib.auth import get_user_model

    from labeling.models import Assignment, Case, GradingScheme, Membership
    from labeling.services.consensus import consensus_refit_project
    from labeling.services.projects import membership_add, project_create
    from labeling.services.readings import reading_submit
    from labeling.services.studies import study_register
    from ml.phantoms import load_truth
    from ml.services.schedules import training_policy_update

    manifest = json.loads((folder / "manifest.json").read_text())
    project = project_create(
        actor=users["admin"],
        name="E2E Training",
        scheme=GradingScheme.objects.get(name="mri_sij", version=1),
        readers_per_case=3,
        adjudication_threshold=1.0,
        ai_aided_reads=True,  # each submitted read opens the reader's AI-aided second read of the case
    )
    membership_add(
        actor=users["admin"], project=project, username="adjudicator", role=Membership.Role.ADJUDICATOR
    )
    cases: dict[str, Case] = {}
    for i, entry in enumerate(manifest["studies"]):
        series = [_series_rows(folder / info["folder"], desc) for desc, info in entry["series"].items()]
        study = study_register(
            actor=None,
            study_uid=entry["study_instance_uid"],
            modality="MR",
            patient_id=entry["patient_id"],
            series=series,
        )
        gold = i == len(manifest["studies"]) - 1
        cases[entry["study_instance_uid"]] = Case.objects.create(
            project=project,
            study=study,
            label=f"train-{i + 1}",
            is_gold=gold,
            reference=load_truth(folder / entry["truth"]).values() if gold else None,
        )
    readers: dict[str, Any] = {}
    reads: dict[str, str] = {}
    for record in json.loads((folder / "readings" / "readings.json").read_text()):
        reader = readers.get(record["reader"])
        if reader is None:
            reader, _ = get_user_model().objects.get_or_create(username=f"sim-{record['reader']}")
            reader.set_password(PASSWORD)
            reader.save()
            membership_add(
                actor=users["admin"], project=project, username=reader.username, role=Membership.Role.READER
            )
            readers[record["reader"]] = reader
        case = cases[record["study_instance_uid"]]
        assignment = Assignment.objects.create(project=project, case=case, reader=reader, session=1)
        reading_submit(actor=reader, assignment=assignment, **record["payload"])
        reads.setdefault(reader.username, assignment.key)
    consensus_refit_project(project_id=project.pk)
    # the e2e's tiny 2-epoch models are far from the default promotion floors: this project accepts any
    for kind in ("contour", "lesions"):
        training_policy_update(actor=users["admin"], project=project, kind=kind, promotion_floor=0.0)
    return project.pk, [c.pk for c in cases.values()], reads


if __name__ == "__main__":
    import django

    django.setup()
    result = seed(Path(sys.argv[1]).resolve())
    print(
        json.dumps({k: v for k, v in result.__dict__.items() if k not in ("mri_truth", "phantoms")}, indent=1)
    )
