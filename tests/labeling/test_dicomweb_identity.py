"""Issue 13, hole 3: readers never receive patient identity through /dicomweb/, whatever the store holds.

Tried as a reader would, with dicomweb-client and a token, against the local folder store and a real Orthanc:
every QIDO level, every metadata level and the Part 10 retrieve. The studies carry identifying attributes at
the top level, inside a sequence and in a private tag; frames still equal the stored pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pydicom.dataset import Dataset
from rest_framework.authtoken.models import Token

from labeling.dicom.confidentiality import READER_KEYWORDS
from labeling.dicom.pseudonyms import UidMap
from labeling.dicom.store import json_value, tag_key
from labeling.models import Assignment, Case
from labeling.services import identity
from labeling.services.identity import assignment_study_uid, assignment_uids
from labeling.services.ingest import import_dicomweb, import_paths
from tests.labeling.dicom.conftest import orthanc_configured
from tests.labeling.dicom.dicom_factory import make_mri_study, write_study

PATIENT = f"PHANTOM-TEST-IDENTITY-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"

#: Attributes of PS3.15 Table E.1-1 (Basic Profile action other than K) that the test studies carry or that a
#: store adds; the four UIDs (action U) are checked apart, as they are replaced, not removed, and so is
#: SeriesDescription (action C under the Clean Descriptors option: only the scheme's sequence names pass).
ANNEX_E_BASIC = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "PatientAddress",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthTime",
    "EthnicGroup",
    "PatientComments",
    "AdditionalPatientHistory",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "ContentDate",
    "ContentTime",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "AcquisitionDateTime",
    "StudyDescription",
    "ImageComments",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ProtocolName",
    "RequestAttributesSequence",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "ReferencedImageSequence",
    "SourceImageSequence",
    "StorageMediaFileSetUID",
    "TimezoneOffsetFromUTC",
    "ReasonForStudy",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
)
UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
PRIVATE_TAG = "00091010"


@pytest.fixture(autouse=True)
def _stored_as_received(settings):
    """Files stored as received: readers must not receive identity whatever import did (issue 13)."""
    settings.DEIDENTIFY_ON_IMPORT = False


def identified_mri(seed: int = 0) -> list[Dataset]:
    """A T1 + STIR study with identity everywhere a modality puts it."""
    datasets = make_mri_study(n_slices=2, patient_id=PATIENT, seed=seed)
    for ds in datasets:
        ds.PatientName = "Doe^Jane"
        ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = "19700101", "F", "056Y"
        ds.OtherPatientIDs = "MRN-0042"
        ds.AccessionNumber, ds.StudyDescription = "ACC-991", "MRI SIJ Jane Doe"
        ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20260102"
        ds.InstitutionName, ds.InstitutionAddress = "St Elsewhere", "1 Main Street"
        ds.ReferringPhysicianName, ds.OperatorsName = "House^Gregory", "Tech^Tina"
        ds.StationName, ds.DeviceSerialNumber = "MR-STATION-7", "SN-12345"
        ds.ProtocolName = "SIJ Jane Doe protocol"
        request = Dataset()
        request.RequestedProcedureID, request.ScheduledProcedureStepID = "RP-1", "SPS-1"
        request.ReasonForTheRequestedProcedure = "back pain, Jane Doe"
        ds.RequestAttributesSequence = [request]
        ds.private_block(0x0009, "CONCORD TEST", create=True).add_new(0x10, "LO", "Jane Doe private")
    return datasets


def reader_client(base_url: str, user: Any) -> DICOMwebClient:
    key = Token.objects.get_or_create(user=user)[0].key
    dw = DICOMwebClient(url=f"{base_url}/dicomweb", headers={"Authorization": f"Token {key}"})
    dw.host = f"{dw.host}:{dw.port}"  # dicomweb-client drops the port from Host
    return dw


def identity_in(items: list[dict[str, Any]]) -> set[str]:
    """Annex E attributes (by keyword) present anywhere in DICOM JSON objects, sequences and private tags."""
    banned = {tag_key(k): k for k in ANNEX_E_BASIC}
    found: set[str] = set()

    def walk(item: dict[str, Any]) -> None:
        for key, entry in item.items():
            if key in banned:
                found.add(banned[key])
            if int(key[:4], 16) % 2:
                found.add(f"private {key}")
            if entry.get("vr") == "SQ":
                for child in entry.get("Value") or []:
                    walk(child)

    for item in items:
        walk(item)
    return found


def addressed(ds: Dataset, uids: UidMap | None) -> tuple[str, str, str]:
    """Study, series and instance UIDs of ``ds`` as the caller addresses them: a reader under the assignment's
    pseudonymous UIDs (``uids``, the only ones that reach it), an adjudicator under the stored ones (None)."""
    stored = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    return (
        stored if uids is None else (uids.pseudo(stored[0]), uids.pseudo(stored[1]), uids.pseudo(stored[2]))
    )


def everything_a_reader_can_ask(
    dw: DICOMwebClient, datasets: list[Dataset], uids: UidMap | None
) -> list[list[dict[str, Any]]]:
    study, series, sop = addressed(datasets[0], uids)
    return [
        dw.search_for_studies(),
        dw.search_for_studies(search_filters={"PatientID": PATIENT}),
        dw.search_for_series(),
        dw.search_for_series(study),
        dw.search_for_instances(),
        dw.search_for_instances(study),
        dw.search_for_instances(study, series),
        dw.retrieve_study_metadata(study),
        dw.retrieve_series_metadata(study, series),
        [dw.retrieve_instance_metadata(study, series, sop)],
        [ds.to_json_dict() for ds in dw.retrieve_series(study, series)],
    ]


def check_reader_view(dw: DICOMwebClient, datasets: list[Dataset], uids: UidMap | None) -> None:
    """Everything ``dw``'s user can ask of the study shows no identity; ``uids``: see ``addressed``."""
    answers = everything_a_reader_can_ask(dw, datasets, uids)
    assert all(answers), "every request answered something"
    for answer in answers:
        assert identity_in(answer) == set(), answer
    allowed = {tag_key(k) for k in READER_KEYWORDS} | {
        tag_key("TransferSyntaxUID"),
        tag_key("SeriesDescription"),
    }
    for answer in answers:
        for item in answer:
            assert set(item) <= allowed, set(item) - allowed
    descriptions = {json_value(i, "SeriesDescription") for answer in answers for i in answer} - {None}
    assert descriptions == {"T1", "STIR"}  # the scheme's sequence names: clean, and the viewer needs them
    first = datasets[0]
    names = addressed(first, uids)
    assert dw.retrieve_instance_frames(*names, frame_numbers=[1]) == [first.PixelData]
    (instance,) = [d for d in dw.retrieve_series(*names[:2]) if d.SOPInstanceUID == names[2]]
    assert instance.PixelData == first.PixelData and "PatientName" not in instance


def test_a_reader_receives_no_patient_identity_from_the_local_store(world, settings, tmp_path, live_server):
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    datasets = identified_mri()
    paths = write_study(datasets, tmp_path / "in")
    report = import_paths(actor=None, paths=paths, project=world.project)
    case = Case.objects.get(pk=report.cases[0])
    assignment = Assignment.objects.create(project=world.project, case=case, reader=world.reader, session=1)
    check_reader_view(reader_client(live_server.url, world.reader), datasets, assignment_uids(assignment))
    check_reader_view(reader_client(live_server.url, world.adjudicator), datasets, None)  # stored UIDs


@pytest.fixture
def orthanc(settings) -> Iterator[Any]:
    with orthanc_configured(settings, PATIENT, "the identity tests") as store:
        yield store


def test_a_reader_receives_no_patient_identity_from_orthanc(orthanc, world, settings, tmp_path, live_server):
    settings.VAR_DIR = tmp_path / "var"
    datasets = identified_mri(seed=4)
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    case = Case.objects.get(pk=report.cases[0])
    assignment = Assignment.objects.create(project=world.project, case=case, reader=world.reader, session=1)
    check_reader_view(reader_client(live_server.url, world.reader), datasets, assignment_uids(assignment))
    check_reader_view(reader_client(live_server.url, world.adjudicator), datasets, None)  # stored UIDs
    assert identity_in(orthanc.series_metadata(datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID))


def test_site_staff_receive_the_objects_as_stored(world, settings, tmp_path, live_server):
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    datasets = identified_mri(seed=8)
    paths = write_study(datasets, tmp_path / "in")
    import_paths(actor=None, paths=paths, project=world.project)
    world.admin.is_staff = True
    world.admin.save()
    first = datasets[0]
    metadata = reader_client(live_server.url, world.admin).retrieve_series_metadata(
        first.StudyInstanceUID, first.SeriesInstanceUID
    )
    assert {json_value(m, "PatientName") for m in metadata} == {"Doe^Jane"}


def test_a_default_case_label_owes_nothing_to_the_study_uid_or_patient(world, settings, tmp_path):
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    datasets = identified_mri(seed=12)
    paths = write_study(datasets, tmp_path / "in")
    report = import_paths(actor=None, paths=paths, project=world.project)
    label = Case.objects.get(pk=report.cases[0]).label
    study_uid = datasets[0].StudyInstanceUID
    assert label.startswith("case-")
    assert study_uid[-8:] not in label and PATIENT not in label


# --- per-assignment pseudonymous UIDs (issue 13, hole 2's UIDs) ---------------------------------------------------


def check_pseudonymous_reads(base_url: str, world: Any, datasets: list[Dataset], case: Case) -> None:
    """The reader has a first read and a blinded repeat of one case: two studies, no real UID, same pixels."""
    first = Assignment.objects.create(project=world.project, case=case, reader=world.reader, session=1)
    Assignment.objects.create(project=world.project, case=case, reader=world.reader, session=2)
    dw = reader_client(base_url, world.reader)
    real = {str(getattr(ds, k)) for ds in datasets for k in UIDS}
    studies = dw.search_for_studies()
    uids = [json_value(s, "StudyInstanceUID") for s in studies]
    assert len(uids) == 2 and len(set(uids)) == 2 and not set(uids) & real  # a repeat looks like a new study
    assert assignment_study_uid(first) in uids
    for uid in uids:  # a search by a pseudonymous UID finds that read, and only it
        assert [
            json_value(s, "StudyInstanceUID")
            for s in dw.search_for_studies(search_filters={"StudyInstanceUID": uid})
        ] == [uid]
    seen: list[set[str]] = []
    by_number = {(ds.SeriesDescription, ds.InstanceNumber): ds for ds in datasets}
    for study in uids:
        series = dw.search_for_series(study)
        answers = [studies, series, dw.search_for_instances(study), dw.retrieve_study_metadata(study)]
        own: set[str] = {study}
        for s in series:
            series_uid = json_value(s, "SeriesInstanceUID")
            metadata = dw.retrieve_series_metadata(study, series_uid)
            answers.append(metadata)
            for m in metadata:
                sop = json_value(m, "SOPInstanceUID")
                own |= {series_uid, sop, json_value(m, "FrameOfReferenceUID")}
                source = by_number[(json_value(s, "SeriesDescription"), json_value(m, "InstanceNumber"))]
                assert dw.retrieve_instance_frames(study, series_uid, sop, frame_numbers=[1]) == [
                    source.PixelData
                ]
            for instance in dw.retrieve_series(study, series_uid):
                source = by_number[(instance.SeriesDescription, instance.InstanceNumber)]
                assert instance.PixelData == source.PixelData
                assert instance.StudyInstanceUID == study and instance.SOPInstanceUID in own
        text = json.dumps(answers)
        assert not [uid for uid in real if uid in text]  # no real UID anywhere, links included
        for answer in answers:
            assert identity_in(answer) == set()
        seen.append(own)
    assert not seen[0] & seen[1]  # no UID shared between the first read and the repeat
    other = reader_client(base_url, world.other_reader)
    with pytest.raises(requests.HTTPError) as caught:
        other.retrieve_study_metadata(uids[0])
    assert caught.value.response.status_code == 404
    # The stored UIDs are no way in for the reader: they would tie the blinded repeat to the first read.
    stored = datasets[0]
    assert dw.search_for_studies(search_filters={"StudyInstanceUID": stored.StudyInstanceUID}) == []
    for fetch in (
        lambda: dw.retrieve_study_metadata(stored.StudyInstanceUID),
        lambda: dw.retrieve_series_metadata(stored.StudyInstanceUID, stored.SeriesInstanceUID),
        lambda: dw.retrieve_instance_frames(
            stored.StudyInstanceUID, stored.SeriesInstanceUID, stored.SOPInstanceUID, frame_numbers=[1]
        ),
    ):
        with pytest.raises(requests.HTTPError) as caught:
            fetch()
        assert caught.value.response.status_code == 404


def test_a_repeat_read_is_served_under_uids_of_its_own_from_the_local_store(
    world, settings, tmp_path, live_server
):
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    datasets = identified_mri(seed=16)
    paths = write_study(datasets, tmp_path / "in")
    report = import_paths(actor=None, paths=paths, project=world.project)
    settings.DICOMWEB_AUTH_CACHE_S = 60  # decisions are cached: a new read must still show at once
    case = Case.objects.get(pk=report.cases[0])
    check_pseudonymous_reads(live_server.url, world, datasets, case)
    Assignment.objects.create(project=world.project, case=case, reader=world.reader, session=3)
    assert len(reader_client(live_server.url, world.reader).search_for_studies()) == 3


def test_a_repeat_read_is_served_under_uids_of_its_own_from_orthanc(
    orthanc, world, settings, tmp_path, live_server
):
    settings.VAR_DIR = tmp_path / "var"
    datasets = identified_mri(seed=20)
    orthanc.store(datasets)
    report = import_dicomweb(
        actor=None, url=orthanc.url, filters={"PatientID": PATIENT}, project=world.project
    )
    check_pseudonymous_reads(live_server.url, world, datasets, Case.objects.get(pk=report.cases[0]))


def test_the_clean_descriptions_are_read_once_per_cache_lifetime(world, settings):
    """Every series served to a reader asks which descriptions it may show (issue 16: one query each, a quarter
    of a metadata request's time in the arrival); a web process reads them once per SCHEME_NAMES_CACHE_S."""
    settings.SCHEME_NAMES_CACHE_S = 60
    identity._clean_descriptions = None
    names = identity.clean_series_descriptions()
    assert {"T1", "STIR"} <= names and "PATIENT^NAME" not in names
    with CaptureQueriesContext(connection) as kept:
        assert identity.clean_series_descriptions() == names
    settings.SCHEME_NAMES_CACHE_S = 0
    with CaptureQueriesContext(connection) as read:
        assert identity.clean_series_descriptions() == names
    assert len(kept) == 0 and len(read) >= 1
