"""De-identification on import (labeling.dicom.deidentify): PS3.15 Annex E basic profile and its options.

No database and no Django. The attribute list the checks walk is dicom-anonymizer's copy of Table E.1-1 (the
table the module applies), filled with a distinctive value per VR, at the top level and nested in a sequence.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator

import numpy as np
import pytest
from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.valuerep import validate_value

from labeling.dicom.deidentify import (
    DATES_OPTIONS,
    TABLE_EDITION,
    DeidentificationRefused,
    Deidentifier,
    DeidProfile,
    patient_pseudonym,
)
from tests.labeling.dicom.dicom_factory import make_seg, make_series

SECRET = b"test secret"
TABLE = dicom_anonymization_database_selector(TABLE_EDITION)
#: The basic profile's actions that must not leave the original value (U is checked on its own).
REMOVING = ("D_TAGS", "Z_TAGS", "X_TAGS", "Z_D_TAGS", "X_Z_TAGS", "X_D_TAGS", "X_Z_D_TAGS")
VALUES = {
    "AE": "ORIGAE",
    "AS": "045Y",
    "CS": "ORIGINAL",
    "DA": "20200102",
    "DS": "12.5",
    "DT": "20200102101112",
    "FL": 7.5,
    "FD": 7.5,
    "IS": "42",
    "LO": "Original Long",
    "LT": "Original long text",
    "PN": "Doe^Jane",
    "SH": "ORIG SHORT",
    "SL": 7,
    "SS": 7,
    "ST": "Original short text",
    "TM": "101112",
    "UC": "Original unlimited",
    "UI": "1.2.3.4.5.6789",
    "UL": 7,
    "UR": "http://hospital.example/patient",
    "US": 7,
    "UT": "Original unlimited text",
    "OB": b"\x01\x02",
    "OW": b"\x01\x02",
    "UN": b"\x01\x02",
}


def _removing_tags() -> list[tuple[int, int]]:
    """Every individual tag of the removing actions that the data dictionary knows (with its VR)."""
    tags = []
    for category in REMOVING:
        for tag in TABLE[category]:
            if len(tag) != 2 or tag[0] in (0x0000, 0x0002):
                continue  # repeating groups, command and file meta groups
            try:
                vr = dictionary_VR(Tag(tag)).split(" or ")[0]
            except KeyError:
                continue
            if vr in VALUES or vr == "SQ":
                tags.append(tag)
    return tags


def _fill(dataset: Dataset, tags: list[tuple[int, int]]) -> None:
    for tag in tags:
        vr = dictionary_VR(Tag(tag)).split(" or ")[0]
        if vr == "SQ":
            item = Dataset()
            item.CodeValue, item.CodeMeaning = "ORIGCODE", "Original meaning"
            item.PersonName = "Doe^Jane"
            dataset.add_new(tag, "SQ", [item])
        else:
            dataset.add_new(tag, vr, VALUES[vr])


def _values(dataset: Dataset) -> Iterator[tuple[str, object]]:
    """(keyword, value) of every element, nested ones included."""
    for element in dataset.iterall():
        if element.VR != "SQ":
            yield keyword_for_tag(element.tag) or str(element.tag), element.value


def _mr_with_every_attribute(description: str = "T1") -> tuple[Dataset, list[tuple[int, int]]]:
    ds = make_series(n_slices=1, rows=8, columns=8, description=description, patient_id="PAT-0001")[0]
    tags = _removing_tags()
    _fill(ds, tags)
    nested = Dataset()  # the profile applies inside sequences too
    _fill(nested, [t for t in tags if dictionary_VR(Tag(t)) != "SQ"])
    ds.ReferencedSeriesSequence = [nested]
    ds.add_new(0x00091010, "LO", "private: Jane Doe")  # a private attribute
    return ds, tags


def _deid(dataset: Dataset, **options) -> Deidentifier:
    profile = DeidProfile(secret=SECRET, scope="project:1", **options)
    deid = Deidentifier(
        profile, patient_id=str(dataset.PatientID), patient_name=str(dataset.get("PatientName", ""))
    )
    deid.dataset(dataset)
    return deid


@pytest.mark.parametrize("dates", DATES_OPTIONS)
@pytest.mark.parametrize("clean_descriptors", [True, False])
def test_no_basic_profile_attribute_with_action_x_z_or_d_keeps_its_original_value(dates, clean_descriptors):
    ds, tags = _mr_with_every_attribute()
    assert len(tags) > 300  # the table, not a handful
    original = copy.deepcopy(ds)
    _deid(ds, dates=dates, clean_descriptors=clean_descriptors)
    date_kept = dates != "remove"
    for where, before, after in [
        ("top", original, ds),
        ("nested", original.ReferencedSeriesSequence[0], ds.ReferencedSeriesSequence[0]),
    ]:
        for tag in tags:
            if tag not in before:
                continue
            element = before[tag]
            if element.VR in ("DA", "DT", "TM") and date_kept:
                continue  # the Retain Longitudinal Temporal Information options: test_dates_*
            if tag not in after:
                continue
            if element.VR == "SQ":
                leftovers = {v for _, v in _values(after[tag].value[0])} if after[tag].value else set()
                assert not leftovers & {"ORIGCODE", "Original meaning", "Doe^Jane"}, (where, element.keyword)
            else:
                assert after[tag].value != element.value, (where, element.keyword, after[tag].value)
    assert not any(element.tag.is_private for element in ds)
    assert ds.PatientIdentityRemoved == "YES"
    assert "Jane" not in str(ds) and "PAT-0001" not in str(ds)


def test_uids_are_deterministic_and_consistent_across_series_instances_and_references():
    series = make_series(n_slices=3, rows=16, columns=16, description="T1", patient_id="PAT-0001")
    seg = make_seg(series)
    originals = {str(ds.SOPInstanceUID) for ds in series} | {
        str(series[0].StudyInstanceUID),
        str(series[0].SeriesInstanceUID),
        str(series[0].FrameOfReferenceUID),
        str(seg.SOPInstanceUID),
        str(seg.SeriesInstanceUID),
    }
    first, again = copy.deepcopy([*series, seg]), copy.deepcopy([*series, seg])
    profile = DeidProfile(secret=SECRET, scope="project:1")
    deid = Deidentifier(profile, patient_id="PAT-0001", patient_name="")
    for ds in first:
        deid.dataset(ds)
    other = Deidentifier(profile, patient_id="PAT-0001", patient_name="")  # another import, same profile
    for ds in again:
        other.dataset(ds)
    *images, out_seg = first
    assert [str(d.SOPInstanceUID) for d in first] == [str(d.SOPInstanceUID) for d in again]
    assert len({str(d.StudyInstanceUID) for d in first}) == 1
    assert {str(d.FrameOfReferenceUID) for d in first} == {str(images[0].FrameOfReferenceUID)}
    referenced = out_seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == images[0].SeriesInstanceUID
    image_uids = {str(d.SOPInstanceUID) for d in images}
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} == image_uids
    sources = {
        str(source.ReferencedSOPInstanceUID)
        for frame in out_seg.PerFrameFunctionalGroupsSequence
        for derivation in frame.DerivationImageSequence
        for source in derivation.SourceImageSequence
    }
    assert sources and sources <= image_uids
    everything = {str(v) for ds in first for _, v in _values(ds)} | {
        str(ds.file_meta.MediaStorageSOPInstanceUID) for ds in first if "file_meta" in dir(ds)
    }
    assert not everything & originals
    for uid in image_uids | {str(out_seg.SeriesInstanceUID)}:
        assert uid.startswith("2.25.") and len(uid) <= 64
    assert out_seg.SOPClassUID == seg.SOPClassUID and images[0].SOPClassUID == series[0].SOPClassUID
    assert set(deid.result.uids) >= originals  # the mapping the server keeps
    elsewhere = Deidentifier(DeidProfile(secret=SECRET, scope="project:2"), patient_id="P", patient_name="")
    assert elsewhere.uid(str(series[0].StudyInstanceUID)) != str(images[0].StudyInstanceUID)


def test_pixel_data_is_unchanged():
    series = make_series(n_slices=2, rows=16, columns=16, patient_id="PAT-0001")
    seg = make_seg(series)
    for ds in [*series, seg]:
        before_bytes, before_pixels = bytes(ds.PixelData), ds.pixel_array.copy()
        _deid(ds)
        assert bytes(ds.PixelData) == before_bytes
        np.testing.assert_array_equal(ds.pixel_array, before_pixels)


def _study(patient: str, date: str) -> Dataset:
    ds = make_series(n_slices=1, rows=8, columns=8, patient_id=patient)[0]
    ds.StudyDate, ds.SeriesDate, ds.AcquisitionDateTime = date, date, f"{date}093000.5"
    ds.StudyTime = "093000"
    ds.PatientBirthDate = "19700315"
    return ds


def _day(value: str) -> datetime.date:
    return datetime.datetime.strptime(value[:8], "%Y%m%d").date()


def test_dates_kept_with_the_full_dates_option():
    ds = _study("PAT-0001", "20260101")
    _deid(ds, dates="keep")
    assert (ds.StudyDate, ds.StudyTime, ds.PatientBirthDate) == ("20260101", "093000", "19700315")
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_dates_shifted_by_one_offset_per_patient_keep_intervals():
    first, later, other = (
        _study("PAT-0001", "20260101"),
        _study("PAT-0001", "20260311"),
        _study("PAT-2", "20260101"),
    )
    shifts = [_deid(ds, dates="shift").result.shift_days for ds in (first, later, other)]
    assert shifts[0] == shifts[1] and shifts[0] != shifts[2] and all(s and s > 0 for s in shifts)
    assert _day(first.StudyDate) == datetime.date(2026, 1, 1) - datetime.timedelta(days=shifts[0])
    assert (_day(later.StudyDate) - _day(first.StudyDate)).days == 69  # the interval holds
    assert first.SeriesDate == first.StudyDate
    assert first.AcquisitionDateTime == f"{first.StudyDate}093000.5"
    assert first.StudyTime == "093000"  # whole days: times stay
    assert first.PatientBirthDate != "19700315"  # not a longitudinal date of the study: still removed
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"


def test_dates_removed_by_the_basic_profile():
    ds = _study("PAT-0001", "20260101")
    _deid(ds, dates="remove")
    assert ds.StudyDate != "20260101" and ds.get("SeriesDate") != "20260101"
    assert ds.StudyTime != "093000" and ds.get("AcquisitionDateTime") != "20260101093000.5"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


@pytest.mark.parametrize(
    ("description", "clean_descriptors", "kept"),
    [("T1", True, True), ("T1 Jane Doe 1970", True, False), ("T1", False, False)],
)
def test_clean_descriptors_keep_only_known_clean_values(description, clean_descriptors, kept):
    ds = make_series(n_slices=1, rows=8, columns=8, description=description, patient_id="PAT-0001")[0]
    ds.StudyDescription = "MRI SIJ of Jane Doe"
    _deid(ds, clean_descriptors=clean_descriptors, clean_descriptions=frozenset({"T1", "STIR"}))
    assert (ds.get("SeriesDescription") == description) is kept
    assert ds.get("StudyDescription") != "MRI SIJ of Jane Doe"


def test_patient_pseudonym_is_stable_within_a_project_and_differs_between_projects():
    ds = make_series(n_slices=1, rows=8, columns=8, patient_id="PAT-0001")[0]
    deid = _deid(ds)
    assert ds.PatientID == deid.result.patient_id == patient_pseudonym(SECRET, "project:1", "PAT-0001")
    assert str(ds.PatientName) == f"{ds.PatientID}^"
    assert patient_pseudonym(SECRET, "project:2", "PAT-0001") != ds.PatientID
    assert patient_pseudonym(b"another secret", "project:1", "PAT-0001") != ds.PatientID


def test_burned_in_annotation_is_refused():
    ds = make_series(n_slices=1, rows=8, columns=8, patient_id="PAT-0001")[0]
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(DeidentificationRefused, match="burned-in"):
        _deid(ds)


@pytest.mark.parametrize("dates", DATES_OPTIONS)
@pytest.mark.parametrize("clean_descriptors", [True, False])
def test_the_method_text_is_a_valid_lo_with_every_option(dates, clean_descriptors):
    ds, _ = _mr_with_every_attribute()
    _deid(ds, dates=dates, clean_descriptors=clean_descriptors)
    validate_value("LO", ds.DeidentificationMethod, config.RAISE)  # 64 characters at most
    meanings = [item.CodeMeaning for item in ds.DeidentificationMethodCodeSequence]
    assert len(meanings) == 1 + clean_descriptors + (dates != "remove")
