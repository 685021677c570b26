"""The reader-study answers match their OpenAPI schema field for field (tests/api_schema: objects closed), so the
front end's types (schema aliases) are those of the real document: 202 while computing, then the analysis."""

from __future__ import annotations

from labeling.models import ReaderStudyAnalysis
from labeling.services.reader_study import reader_study_compute
from tests.api_schema import assert_matches_schema
from tests.labeling.test_reader_study import ct_study


def test_the_computing_answer_and_the_analysis_match_the_schema(db, client_for, monkeypatch):
    monkeypatch.setattr("labeling.api.reader_study_views.reader_study_enqueue", lambda **kwargs: None)
    project, admin, _readers = ct_study(n_cases=12)
    client = client_for(admin)
    url = f"/api/projects/{project.pk}/reader-study/"
    computing = client.get(url)
    assert computing.status_code == 202 and assert_matches_schema(computing)["status"] == "computing"
    for reference in ("phantom", "consensus"):  # consensus: sensitivity and specificity are errors
        reader_study_compute(project_id=project.pk, reference=reference)
        ready = client.get(url, {"reference": reference})
        assert ready.status_code == 200
        body = assert_matches_schema(ready)
        assert body["status"] == "ready" and body["reference"] == reference
        analysed = [e for e in body["endpoints"] if "analyses" in e]
        assert analysed and all(e["roc"] and e["agreement"] for e in analysed)
    assert ReaderStudyAnalysis.objects.filter(project=project).count() == 2
