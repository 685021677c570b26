"""A small MRI or CT campaign for the retraining tests: phantoms (CT with their pelvis SEGs) imported into the
configured store, simulated readers' readings and contours submitted through the services, consensus refitted,
gold cases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import override_settings

from labeling.models import Assignment, Case, Membership, Project
from labeling.services.consensus import consensus_refit_project
from labeling.services.deidentification import stored_uid
from labeling.services.ingest import import_paths
from labeling.services.readings import reading_submit
from ml.phantoms import generate, load_truth
from tests.labeling.conftest import client_for  # noqa: F401 - shared fixture
from tests.labeling.factories import MembershipFactory, ProjectFactory, UserFactory, scheme

TINY_CONTOUR = {"epochs": 2, "width": 4, "crop_mm": 48.0, "pixel_mm": 1.5, "batch_size": 16, "device": "cpu"}


@dataclass
class Campaign:
    project: Project
    admin: object
    readers: list
    root: Path


TINY_CT = {  # seconds on one CPU core: 1 epoch each of a narrow segmenter and DenseNet-121 on coarse crops
    "epochs": 1,
    "batch_size": 2,
    "device": "cpu",
    "grader": {"init_features": 4, "growth_rate": 4, "seg_channels": [4, 8, 16], "seg_strides": [2, 2]},
    "crop": {"box_mm": [64.0, 64.0, 64.0], "voxel_mm": 2.0, "seg_shape": [16, 32, 32]},
}


def _stored_payload(project, payload: dict) -> dict:
    """A simulated reading whose contours name the series and instances by the UIDs they were stored under."""
    contours = []
    for contour in payload.get("contours", []):
        contour = {**contour, "series_uid": stored_uid(project, contour["series_uid"])}
        if contour.get("sop_instance_uid"):
            contour["sop_instance_uid"] = stored_uid(project, contour["sop_instance_uid"])
        contours.append(contour)
    return {**payload, "contours": contours} if "contours" in payload else payload


def build_campaign(root: Path, n_mri: int = 5, n_gold: int = 2, *, n_ct: int = 0) -> Campaign:
    """MRI phantoms into an MRI project, or with ``n_ct`` CT phantoms (each with its pelvis SEG) into a CT one."""
    data = root / "phantoms"
    kind = "ct" if n_ct else "mri"
    generate(data, n_mri=0 if n_ct else n_mri, n_ct=n_ct, seed=11, workers=1, readers=3, sessions=1)
    project = ProjectFactory(readers_per_case=3, **({"scheme": scheme("ct_sij")} if n_ct else {}))
    admin = UserFactory(username=f"ml-admin-{project.pk}")
    MembershipFactory(project=project, user=admin, role=Membership.Role.ADMIN)
    files = [p for p in data.rglob("*.dcm") if p.parent.name in ("T1", "STIR", "CT", "SEG")]
    report = import_paths(actor=admin, paths=files, project=project)
    assert not report.problems, report.problems
    by_uid = {c.study.study_uid: c for c in Case.objects.filter(project=project).select_related("study")}
    users = {}
    for record in json.loads((data / "readings" / "readings.json").read_text()):
        user = users.get(record["reader"])
        if user is None:
            user = users[record["reader"]] = UserFactory(
                username=f"ml-reader-{project.pk}-{record['reader']}"
            )
            MembershipFactory(project=project, user=user, role=Membership.Role.READER)
        case = by_uid[stored_uid(project, record["study_instance_uid"])]  # imported de-identified
        assignment = Assignment.objects.create(
            project=project, case=case, reader=user, session=record["session"]
        )
        reading_submit(actor=user, assignment=assignment, **_stored_payload(project, record["payload"]))
    for entry in sorted(data.glob(f"{kind}-*/truth.json"))[:n_gold]:
        truth = load_truth(entry)
        Case.objects.filter(
            project=project, study__study_uid=stored_uid(project, truth.study_instance_uid)
        ).update(is_gold=True, reference=truth.values())
    consensus_refit_project(project_id=project.pk)
    return Campaign(project, admin, list(users.values()), root)


@pytest.fixture
def campaign_settings(tmp_path):
    with override_settings(
        DICOM_FOLDER=tmp_path / "store", DICOMWEB_URL="", ML_WEIGHTS_DIR=tmp_path / "models"
    ):
        yield tmp_path
