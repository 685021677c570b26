"""The CT grader in the product: each study's pelvis SEG travels from the store (local folder or Orthanc) into
the case records the pipeline reads, and a run started from the API trains on a real worker, is evaluated on
gold, promoted, and pre-reads every case."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from config.celery import app
from labeling.models import Case
from labeling.services.ingest import import_paths
from ml.ctgrade.data import load_ct_scan
from ml.data.snapshot import link_study
from ml.models import ModelVersion, Prediction, TrainingRun
from ml.services.snapshots import case_record
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_seg, make_series, write_seg, write_series
from tests.labeling.factories import ProjectFactory, scheme
from tests.labeling.processes import celery_worker_cmd, process_env, running, wait_until
from tests.ml_app.conftest import TINY_CT, build_campaign

PATIENT = f"PHANTOM-TEST-CTSEG-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(params=["local", "orthanc"])
def configured_store(request, settings, tmp_path):
    """The configured DICOM store: the local folder, or the test Orthanc (its test studies deleted after)."""
    settings.ML_WEIGHTS_DIR = tmp_path / "models"
    settings.VAR_DIR = tmp_path / "var"
    if request.param == "local":
        settings.DICOMWEB_URL, settings.DICOM_FOLDER = "", tmp_path / "store"
        yield request.param
        return
    with orthanc_configured(settings, PATIENT, "the CT SEG tests"):
        yield request.param


@pytest.mark.django_db
def test_the_ct_pipeline_reads_each_study_s_seg_from_the_store(configured_store, tmp_path):
    series = make_series(
        n_slices=3, rows=16, columns=16, modality="CT", description="CT SIJ", patient_id=PATIENT
    )
    seg = make_seg(series, segments=("sacrum", "left ilium", "right ilium"))
    files = [*write_series(series, tmp_path / "in" / "CT"), write_seg(seg, tmp_path / "in" / "SEG")]
    project = ProjectFactory(scheme=scheme("ct_sij"))
    assert not import_paths(actor=None, paths=files, project=project).problems

    record = case_record(Case.objects.select_related("study").get(project=project), [])
    scan = load_ct_scan(link_study(record, tmp_path / "study"))

    assert [s["modality"] for s in record["series"]] == ["CT", "SEG"]
    assert scan.series.pixels.shape == (3, 16, 16) and scan.labels is not None
    frames = dcmread(files[-1]).pixel_array  # (segments x slices, H, W), segment-major
    expected = np.zeros((3, 16, 16), np.uint8)
    for index, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        k = [float(ds.ImagePositionPatient[2]) for ds in series].index(z)
        expected[k][frames[index] > 0] = min(number, 2)  # both ilia are one class for the segmenter
    assert np.array_equal(scan.labels, expected)


@pytest.mark.django_db(transaction=True)
def test_a_ct_run_from_the_api_trains_on_the_segs_is_promoted_and_pre_reads(campaign_settings, client_for):
    campaign = build_campaign(campaign_settings, n_ct=3, n_gold=1)
    env = process_env(
        DICOM_FOLDER=str(campaign.root / "store"),
        DICOMWEB_URL="",
        ML_WEIGHTS_DIR=str(campaign.root / "models"),
    )
    admin = client_for(campaign.admin)
    # a 1-epoch grader is far from the default floor (QWK 0.6): this project accepts any
    floor = admin.post(
        f"/api/projects/{campaign.project.pk}/training/policies/ctgrade/update/",
        {"promotion_floor": -1.0},
        format="json",
    )
    assert floor.status_code == 200, floor.content
    app.control.purge()
    with running(celery_worker_cmd(), env, campaign.root / "worker.log"):
        started = admin.post(
            f"/api/projects/{campaign.project.pk}/training/runs/start/",
            {"kind": "ctgrade", "config": TINY_CT},
            format="json",
        )
        assert started.status_code == 201, started.content
        run_id = started.json()["id"]
        wait_until(
            lambda: TrainingRun.objects.get(pk=run_id).state not in TrainingRun.ACTIVE,
            timeout_s=300,
            interval_s=0.5,
            what="the CT training run",
        )
        run = TrainingRun.objects.get(pk=run_id)
        assert run.state == TrainingRun.State.SUCCEEDED, run.error + run.log
        version = ModelVersion.objects.get(training_run=run)
        wait_until(
            lambda: Prediction.objects.filter(model_version=version).count() == 3,
            timeout_s=120,
            what="CT pre-reads of every case",
        )
    manifest = json.loads((Path(run.snapshot.path) / "manifest.json").read_text())
    assert "cases" not in manifest and manifest["format"] == 2  # one format: the studies
    root = Path(run.snapshot.path)
    assert all(
        sorted(p.name for p in (root / s["path"]).iterdir()) == ["CT", "SEG"] for s in manifest["studies"]
    )
    summary = run.snapshot.summary
    assert (summary["cases"], summary["train"], summary["gold"]) == (3, 2, 1) and summary[
        "labelled_items"
    ] > 0
    assert (run.progress["phase"], run.progress["epochs"], run.progress["fraction"]) == ("grader", 2, 1.0)
    assert version.status == ModelVersion.Status.PROMOTED, version.comparison
    assert version.gold_metrics["primary"] == "qwk" and version.gold_metrics["n_gold"] == 1
    assert version.card["model_kind"] and version.card["data_snapshot_id"] == run.snapshot.content_hash
    # trained on the frozen consensus the card names (the two training cases have no reference grade)
    assert version.card["extra"]["soft_source"] == "snapshot"
    assert version.card["consensus_run_id"] == f"mny_grade:{run.snapshot.consensus_runs['mny_grade']}"
    output = Prediction.objects.filter(model_version=version).first().output
    assert {"left", "right", "total_score"} <= set(output)
    assert abs(sum(output["left"]["probabilities"]) - 1) < 1e-3
