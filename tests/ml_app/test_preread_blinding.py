"""A reader's AI pre-read names nothing internal: each model kind trains on a small campaign, pre-reads its
cases through ``prereads_compute`` as the gpu queue does, and a reader opens an AI-aided assignment. What
``GET /api/assignments/{key}/ai/`` answers must not carry the case's primary key (the contour pre-read used
to, as ``scan_id``), another internal id, the case label, a stored DICOM UID or a server path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Assignment, Case, Instance, Series
from ml.models import ModelVersion, Prediction, TrainingRun
from ml.pipelines import TrainRequest, pipeline_for
from ml.services.prereads import prereads_compute
from ml.services.snapshots import snapshot_create
from tests.api_schema import assert_matches_schema
from tests.ml_app.conftest import TINY_CONTOUR, TINY_CT, build_campaign
from tests.ml_app.test_pipelines import TINY_LESIONS

TINY = {"contour": TINY_CONTOUR, "lesions": TINY_LESIONS, "ctgrade": TINY_CT}
#: Keys that would name a case, its study or a file on the server.
FORBIDDEN_KEYS = {
    "scan_id",
    "case",
    "case_id",
    "case_label",
    "study_id",
    "study_uid",
    "series_uid",
    "sop_uid",
    "sop_instance_uid",
    "path",
    "files",
    "checkpoint_dir",
}
#: Integer fields of a pre-read whose value may equal a primary key by chance.
NUMBERS = {"version", "slice_index", "grade", "total_score"}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of a JSON document, depth first; list items as key ``[i]``."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        where = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
        yield where, str(key) if isinstance(node, dict) else f"[{key}]", value
        yield from walk(value, where)


def assert_names_nothing_internal(payload: Any, case: Case, root: Path) -> None:
    study = case.study
    uids = {study.study_uid} | set(Series.objects.filter(study=study).values_list("series_uid", flat=True))
    uids |= set(Instance.objects.filter(series__study=study).values_list("sop_uid", flat=True))
    ids = {case.pk, study.pk} | set(Prediction.objects.filter(case=case).values_list("pk", flat=True))
    for where, key, value in walk(payload):
        assert key not in FORBIDDEN_KEYS, (where, value)
        if isinstance(value, str):
            assert value not in {str(i) for i in ids}, (where, value)
            assert not any(uid in value for uid in uids | {case.label}), (where, value)
            assert str(root) not in value, (where, value)
        elif isinstance(value, int) and not isinstance(value, bool) and key not in NUMBERS:
            assert value not in ids, (where, value)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["contour", "lesions", "ctgrade"])
def test_a_readers_ai_pre_read_names_no_case_id_study_or_stored_uid(
    kind, campaign_settings, client_for, monkeypatch
):
    if kind == "ctgrade":
        campaign = build_campaign(campaign_settings, n_ct=3, n_gold=1)
    else:
        campaign = build_campaign(campaign_settings, n_mri=4, n_gold=2)
    project = campaign.project
    project.ai_aided_reads = True
    project.save()
    checkpoint = campaign.root / "ckpt"
    snapshot = snapshot_create(project=project, kind=kind)
    pipeline_for(kind).train(TrainRequest(Path(snapshot.path), checkpoint, TINY[kind]))
    run = TrainingRun.objects.create(project=project, kind=kind, state=TrainingRun.State.SUCCEEDED)
    version = ModelVersion.objects.create(
        project=project,
        kind=kind,
        version=1,
        training_run=run,
        status=ModelVersion.Status.PROMOTED,
        checkpoint_dir=str(checkpoint),
    )
    monkeypatch.setattr("ml.services.prereads._enqueue_prereads", lambda version_id: None)
    assert prereads_compute(version_id=version.pk) == project.cases.count()

    reader = campaign.readers[0]
    case = project.cases.select_related("study").order_by("id").first()
    aided = Assignment.objects.create(project=project, case=case, reader=reader, session=2, aided=True)
    response = client_for(reader).get(f"/api/assignments/{aided.key}/ai/")
    assert response.status_code == 200, response.content[:300]
    payload = assert_matches_schema(response)  # each kind's real output fits its declared schema
    assert [p["kind"] for p in payload] == [kind] and payload[0]["output"]
    if kind == "contour":
        assert payload[0]["output"]["contours"], "a trained contour model traces some line"
    assert_names_nothing_internal(payload, case, campaign.root)
