"""The DicomStore contract, run against both implementations (Orthanc over DICOMweb, and a local folder)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from labeling.dicom import DicomNotFound, DicomStore, DicomStoreError
from labeling.dicom.store import json_value
from tests.labeling.dicom.conftest import TEST_PATIENT


def _uids(series: list[Dataset]) -> tuple[str, str, list[str]]:
    return series[0].StudyInstanceUID, series[0].SeriesInstanceUID, [ds.SOPInstanceUID for ds in series]


def test_store_returns_the_sop_instance_uids(store: DicomStore, mr_series: list[Dataset]) -> None:
    assert store.store(mr_series) == [ds.SOPInstanceUID for ds in mr_series]


def test_stored_series_is_found_by_qido_at_every_level(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)

    studies = store.search_studies({"StudyInstanceUID": study_uid})
    assert [json_value(s, "StudyInstanceUID") for s in studies] == [study_uid]
    assert json_value(studies[0], "PatientID") == TEST_PATIENT
    assert int(json_value(studies[0], "NumberOfStudyRelatedInstances")) == 3
    series = store.search_series(study_uid, {"Modality": "MR"})
    assert [json_value(s, "SeriesInstanceUID") for s in series] == [series_uid]
    assert json_value(series[0], "SeriesDescription") == "T1"
    instances = store.search_instances(study_uid, series_uid)
    assert sorted(json_value(i, "SOPInstanceUID") for i in instances) == sorted(sop_uids)


def test_search_filters_exclude_non_matching_studies(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, _, _ = _uids(mr_series)
    store.store(mr_series)

    assert len(store.search_studies({"PatientID": TEST_PATIENT, "StudyInstanceUID": study_uid})) == 1
    assert store.search_studies({"PatientID": "PHANTOM-NOBODY"}) == []
    assert store.search_series(study_uid, {"Modality": "CT"}) == []
    assert store.search_series(study_uid, {"SeriesDescription": "STIR"}) == []


def test_wildcard_filters_match_at_every_level(store: DicomStore, mr_series: list[Dataset]) -> None:
    """``*`` and ``?`` reach the server as wildcards: dicomweb-client percent-encodes them (``%2A``), and
    Orthanc then matched nothing (issue 16; the load bench's cleanup found no studies of earlier runs)."""
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)
    prefix = TEST_PATIENT[:-3]

    studies = store.search_studies({"PatientID": f"{prefix}*"})
    assert study_uid in [json_value(s, "StudyInstanceUID") for s in studies]
    assert study_uid in [
        json_value(s, "StudyInstanceUID") for s in store.search_studies({"PatientID": f"{prefix}???"})
    ]
    assert len(store.search_series(study_uid, {"SeriesDescription": "T*"})) == 1
    assert len(store.search_instances(study_uid, series_uid, {"PatientID": "*"})) == len(sop_uids)
    assert store.search_studies({"PatientID": f"{prefix}NOBODY*"}) == []


def test_series_metadata_carries_the_source_uids_and_no_inline_pixels(
    store: DicomStore, mr_series: list[Dataset]
) -> None:
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)

    metadata = store.series_metadata(study_uid, series_uid)
    assert sorted(json_value(m, "SOPInstanceUID") for m in metadata) == sorted(sop_uids)
    for item in metadata:
        assert json_value(item, "StudyInstanceUID") == study_uid
        assert json_value(item, "SeriesInstanceUID") == series_uid
        assert json_value(item, "FrameOfReferenceUID") == mr_series[0].FrameOfReferenceUID
        assert "InlineBinary" not in item.get("7FE00010", {})
    single = store.instance_metadata(study_uid, series_uid, sop_uids[1])
    assert json_value(single, "InstanceNumber") == 2


def test_frame_bytes_equal_the_source_pixel_bytes(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)

    for dataset, sop_uid in zip(mr_series, sop_uids, strict=True):
        assert store.frames(study_uid, series_uid, sop_uid, [1]) == [dataset.PixelData]


def test_instance_and_rendered_image_come_back(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)

    instance = store.instance(study_uid, series_uid, sop_uids[0])
    assert instance.SOPInstanceUID == sop_uids[0]
    assert instance.PixelData == mr_series[0].PixelData
    assert store.rendered(study_uid, series_uid, sop_uids[0]).startswith(b"\x89PNG\r\n\x1a\n")


def test_storing_the_same_instances_again_creates_no_duplicates(
    store: DicomStore, mr_series: list[Dataset]
) -> None:
    study_uid, series_uid, _ = _uids(mr_series)
    store.store(mr_series)
    store.store(mr_series)
    store.store(mr_series[:1])

    assert len(store.search_instances(study_uid, series_uid)) == 3
    assert (
        int(
            json_value(
                store.search_studies({"StudyInstanceUID": study_uid})[0], "NumberOfStudyRelatedInstances"
            )
        )
        == 3
    )


def test_deleted_study_is_gone(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, series_uid, sop_uids = _uids(mr_series)
    store.store(mr_series)

    store.delete_study(study_uid)

    assert store.search_studies({"StudyInstanceUID": study_uid}) == []
    with pytest.raises(DicomNotFound):
        store.instance_metadata(study_uid, series_uid, sop_uids[0])
    with pytest.raises(DicomNotFound):
        store.delete_study(study_uid)


def test_reading_an_unknown_instance_raises_not_found(store: DicomStore, mr_series: list[Dataset]) -> None:
    study_uid, series_uid, _ = _uids(mr_series)
    store.store(mr_series)

    with pytest.raises(DicomNotFound):
        store.instance_metadata(study_uid, series_uid, "1.2.3.4.5.6.7.8.9")
    with pytest.raises(DicomNotFound):
        store.frames(study_uid, series_uid, "1.2.3.4.5.6.7.8.9", [1])
    with pytest.raises(DicomNotFound):
        store.series_metadata(study_uid, "1.2.3.4.5.6.7.8.9")


def test_an_instance_without_uids_is_refused(store: DicomStore, mr_series: list[Dataset]) -> None:
    del mr_series[0].SOPInstanceUID
    with pytest.raises(DicomStoreError):
        store.store(mr_series[:1])
