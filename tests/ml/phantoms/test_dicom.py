"""DICOM output: dciodvfy finds no errors, required attributes per SPEC §6.6, SEG reloads with highdicom."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom

from ml.data.truth import load_truth
from ml.phantoms.schema import GENERATOR_VERSION
from tests.services import dciodvfy_errors


def test_dciodvfy_reports_no_errors(written) -> None:
    root = written["root"]
    files = sorted((root / "mri-0004/T1").glob("*.dcm")) + sorted((root / "mri-0004/STIR").glob("*.dcm"))
    ct = sorted((root / "ct-0000/CT").glob("*.dcm"))
    files += [*ct[:: max(1, len(ct) // 6)], root / "ct-0000/SEG/seg.dcm"]
    for path in files:
        assert not (errors := dciodvfy_errors(path)), f"{path}: {errors}"


def test_required_attributes(written) -> None:
    root, mri = written["root"], written["mri"]
    t1 = pydicom.dcmread(root / "mri-0004/T1/0001.dcm")
    stir = pydicom.dcmread(root / "mri-0004/STIR/0003.dcm")
    assert t1.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (t1.SeriesDescription, stir.SeriesDescription) == ("T1", "STIR")
    assert t1.StudyInstanceUID == stir.StudyInstanceUID == mri.study_instance_uid
    assert t1.FrameOfReferenceUID == stir.FrameOfReferenceUID
    assert t1.SeriesInstanceUID != stir.SeriesInstanceUID
    assert str(t1.PatientID).startswith("PHANTOM-") and str(t1.PatientName).startswith("PHANTOM-")
    assert GENERATOR_VERSION in t1.ImageComments and "seed=0" in t1.ImageComments
    assert t1.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and "RescaleSlope" not in t1
    assert stir.SOPInstanceUID == mri.series["STIR"].sop_instance_uids[2]
    ct = pydicom.dcmread(root / "ct-0000/CT/0001.dcm")
    assert ct.SeriesDescription == "CT SIJ" and ct.Modality == "CT"
    assert ct.SliceThickness == 1.0 and np.isclose(float(ct.PixelSpacing[0]), 0.7)


def test_ct_rescale_recovers_hounsfield_units(written, ct_phantom) -> None:
    ds = pydicom.dcmread(written["root"] / "ct-0000/CT/0040.dcm")
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(
        hu, np.clip(ct_phantom.hu[39], -1024, None), atol=float(ds.RescaleSlope) / 2 + 1e-3
    )


def test_seg_reloads_with_highdicom(written, ct_phantom) -> None:
    root, truth = written["root"], load_truth(written["root"] / "ct-0000")
    seg = hd.seg.segread(root / "ct-0000/SEG/seg.dcm")
    assert seg.SeriesInstanceUID == truth.series["SEG"].series_instance_uid
    assert [d.segment_label for d in seg.SegmentSequence] == ["sacrum", "left ilium", "right ilium"]
    sop_uids = truth.series["CT"].sop_instance_uids
    labels = seg.get_pixels_by_source_instance(sop_uids, combine_segments=True, skip_overlap_checks=True)
    np.testing.assert_array_equal(labels, ct_phantom.labels)
    assert seg.StudyInstanceUID == truth.study_instance_uid
