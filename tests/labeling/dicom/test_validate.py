"""validate_files: every bad case is reported with its file named, and the good series are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from labeling.dicom.segmentation import SourceSeries
from labeling.dicom.validate import ValidationReport, validate_files
from tests.labeling.dicom.dicom_factory import make_seg, make_series, write_seg, write_series


def _problem_for(report: ValidationReport, path: Path) -> str:
    reasons = [p.reason for p in report.problems if p.path == path]
    assert len(reasons) == 1, f"expected one problem for {path.name}, got {reasons}"
    assert path.name in reasons[0], "every reason names its own file"
    return reasons[0]


@pytest.fixture
def good(tmp_path: Path) -> tuple[list[Dataset], list[Path]]:
    series = make_series(n_slices=3, description="T1")
    return series, write_series(series, tmp_path / "good")


def test_a_valid_series_passes_ordered_along_the_normal(good: tuple[list[Dataset], list[Path]]) -> None:
    series, paths = good
    report = validate_files(reversed(paths), required_modality="MR")

    assert report.ok
    valid = report.studies[series[0].StudyInstanceUID][series[0].SeriesInstanceUID]
    assert valid.paths == tuple(paths)
    assert valid.spacing_mm == pytest.approx(3.0)
    assert (valid.modality, valid.description) == ("MR", "T1")


def test_non_dicom_file_is_named(tmp_path: Path, good: tuple[list[Dataset], list[Path]]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image\n")

    report = validate_files([*good[1], text])

    assert "notes.txt is not a DICOM file" in _problem_for(report, text)
    assert len(report.series) == 1


@pytest.mark.parametrize("keep_bytes", [200, 900, -100])
def test_truncated_file_is_named(
    tmp_path: Path, good: tuple[list[Dataset], list[Path]], keep_bytes: int
) -> None:
    damaged = tmp_path / "cut.dcm"
    data = good[1][0].read_bytes()
    damaged.write_bytes(data[:keep_bytes])

    report = validate_files([*good[1], damaged])

    reason = _problem_for(report, damaged)
    assert "cut.dcm" in reason
    assert any(word in reason for word in ("truncated", "damaged", "not a DICOM"))
    assert len(report.series) == 1


@pytest.mark.parametrize("keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"])
def test_missing_geometry_is_named(tmp_path: Path, keyword: str) -> None:
    series = make_series(n_slices=3)
    delattr(series[1], keyword)
    paths = write_series(series, tmp_path)

    report = validate_files(paths)

    assert _problem_for(report, paths[1]) == f"{paths[1].name}: missing geometry: {keyword}"
    assert report.series[0].paths == (paths[0], paths[2])


def test_mixed_frame_of_reference_rejects_the_series_naming_the_odd_file(tmp_path: Path) -> None:
    series = make_series(n_slices=3)
    series[2].FrameOfReferenceUID = "1.2.3.999"
    paths = write_series(series, tmp_path)

    report = validate_files(paths)

    reason = _problem_for(report, paths[2])
    assert paths[2].name in reason and "mixed FrameOfReferenceUID" in reason and "1.2.3.999" in reason
    assert paths[2].name in _problem_for(report, paths[0])  # the others say which file sank the series
    assert report.series == []


def test_inconsistent_slice_spacing_is_named(tmp_path: Path) -> None:
    series = make_series(n_slices=5, spacing_mm=3.0)
    series[4].ImagePositionPatient = [-16.0, 15.0, 16.0]  # 6 mm after slice 4 instead of 3
    paths = write_series(series, tmp_path)

    report = validate_files(paths)

    reason = _problem_for(report, paths[4])
    assert "inconsistent slice spacing" in reason and "6.000 mm" in reason and paths[3].name in reason
    assert report.series == [] and len(report.problems) == 5


def test_duplicate_slice_position_is_named(tmp_path: Path) -> None:
    series = make_series(n_slices=3)
    series[2].ImagePositionPatient = series[1].ImagePositionPatient
    paths = write_series(series, tmp_path)

    report = validate_files(paths)

    assert "same slice position" in _problem_for(report, paths[2])


def test_wrong_modality_is_named(tmp_path: Path, good: tuple[list[Dataset], list[Path]]) -> None:
    ct_paths = write_series(make_series(n_slices=2, modality="CT", description="CT SIJ"), tmp_path / "ct")

    report = validate_files([*good[1], *ct_paths], required_modality="MR")

    for path in ct_paths:
        assert _problem_for(report, path) == f"{path.name} has modality 'CT', expected MR"
    assert [s.modality for s in report.series] == ["MR"]


def test_duplicate_instance_is_named(tmp_path: Path, good: tuple[list[Dataset], list[Path]]) -> None:
    copy = tmp_path / "copy.dcm"
    copy.write_bytes(good[1][0].read_bytes())

    report = validate_files([*good[1], copy])

    assert "duplicates" in _problem_for(report, copy)
    assert len(report.series[0].paths) == 3


def test_every_problem_is_reported_in_one_pass_and_good_series_are_kept(tmp_path: Path) -> None:
    t1 = make_series(n_slices=3, description="T1")
    stir = make_series(n_slices=3, description="STIR", study_uid=t1[0].StudyInstanceUID)
    good_paths = write_series(t1, tmp_path / "t1") + write_series(stir, tmp_path / "stir")
    broken = make_series(n_slices=3, description="broken")
    del broken[0].ImagePositionPatient
    broken[2].FrameOfReferenceUID = "1.2.3.4"
    broken_paths = write_series(broken, tmp_path / "broken")
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 10)

    report = validate_files([*good_paths, *broken_paths, tmp_path / "junk.bin", tmp_path / "missing.dcm"])

    assert {str(p.path.name) for p in report.problems} >= {"junk.bin", "missing.dcm", broken_paths[0].name}
    assert len(report.problems) == 2 + 3  # junk, missing, and all three files of the broken series
    assert sorted(s.description for s in report.studies[t1[0].StudyInstanceUID].values()) == ["STIR", "T1"]
    assert all(p.path.name in str(p) for p in report.problems)


# --- DICOM SEG ----------------------------------------------------------------------------------------------


@pytest.fixture
def ct_with_seg(tmp_path: Path) -> tuple[list[Dataset], list[Path], Dataset]:
    series = make_series(n_slices=3, rows=16, columns=16, modality="CT", description="CT SIJ")
    return series, write_series(series, tmp_path / "ct"), make_seg(series)


def test_a_seg_of_a_series_in_the_same_import_passes_after_its_source(
    tmp_path: Path, ct_with_seg: tuple[list[Dataset], list[Path], Dataset]
) -> None:
    series, paths, seg = ct_with_seg
    seg_path = write_seg(seg, tmp_path / "seg")

    report = validate_files([seg_path, *paths], required_modality="CT")  # a SEG needs no CT modality

    assert report.ok, report.problems
    by_series = report.studies[series[0].StudyInstanceUID]
    assert list(by_series) == [series[0].SeriesInstanceUID, seg.SeriesInstanceUID]  # images first
    valid = by_series[seg.SeriesInstanceUID]
    assert (valid.modality, valid.description, valid.paths) == ("SEG", "Bone SEG", (seg_path,))
    assert valid.source_series_uid == series[0].SeriesInstanceUID
    assert valid.frame_of_reference_uid == series[0].FrameOfReferenceUID


def test_a_seg_alone_is_checked_against_a_series_imported_before(
    tmp_path: Path, ct_with_seg: tuple[list[Dataset], list[Path], Dataset]
) -> None:
    series, paths, seg = ct_with_seg
    seg_path = write_seg(seg, tmp_path / "seg")
    earlier = validate_files(paths).studies[series[0].StudyInstanceUID][series[0].SeriesInstanceUID]
    registered = SourceSeries(
        study_uid=earlier.study_uid,
        series_uid=earlier.series_uid,
        frame_of_reference_uid=earlier.frame_of_reference_uid,
        rows=16,
        columns=16,
        orientation=tuple(float(v) for v in series[0].ImageOrientationPatient),
        positions=tuple(tuple(float(v) for v in ds.ImagePositionPatient) for ds in series),  # type: ignore[misc]
        sop_uids=frozenset(str(ds.SOPInstanceUID) for ds in series),
    )
    asked: list[str] = []

    def known(uid: str) -> SourceSeries | None:
        asked.append(uid)
        return registered if uid == registered.series_uid else None

    assert validate_files([seg_path], known_series=known).ok
    assert asked == [series[0].SeriesInstanceUID]
    alone = validate_files([seg_path])
    assert "neither among the files imported with it nor imported before" in _problem_for(alone, seg_path)


def _other_study(seg: Dataset) -> None:
    seg.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"


def _frame_of_reference(seg: Dataset) -> None:
    seg.FrameOfReferenceUID = "1.2.3.999"


def _no_segments(seg: Dataset) -> None:
    seg.SegmentSequence = []


def _undefined_segment(seg: Dataset) -> None:
    seg.PerFrameFunctionalGroupsSequence[1].SegmentIdentificationSequence[0].ReferencedSegmentNumber = 7


def _off_slice(seg: Dataset) -> None:
    plane = seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    plane.ImagePositionPatient = [float(plane.ImagePositionPatient[0]), 0.0, 100.0]


def _no_reference(seg: Dataset) -> None:
    del seg.ReferencedSeriesSequence


def _unknown_instance(seg: Dataset) -> None:
    seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID = "1.2.3.4.5"


def _wrong_class(seg: Dataset) -> None:
    seg.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66"  # Raw Data Storage with Modality SEG


SEG_REJECTIONS = [
    ("other_study", _other_study, "not of its own study"),
    ("frame_of_reference", _frame_of_reference, "must share its source series' frame of reference"),
    ("no_segments", _no_segments, "is a SEG without segments"),
    ("undefined_segment", _undefined_segment, "frame 2 refers to segment 7, which the SEG's SegmentSequence"),
    ("off_slice", _off_slice, "frame 1 lies"),
    ("no_reference", _no_reference, "names no source series"),
    ("unknown_instance", _unknown_instance, "not in its source series"),
    ("wrong_class", _wrong_class, "only Segmentation Storage is supported"),
]


@pytest.mark.parametrize(("name", "damage", "message"), SEG_REJECTIONS, ids=[r[0] for r in SEG_REJECTIONS])
def test_a_seg_that_does_not_fit_its_source_is_named_and_the_images_pass(
    tmp_path: Path, ct_with_seg: tuple[list[Dataset], list[Path], Dataset], name: str, damage, message: str
) -> None:
    _series, paths, seg = ct_with_seg
    damage(seg)
    seg_path = write_seg(seg, tmp_path / "seg")

    report = validate_files([*paths, seg_path], required_modality="CT")

    assert message in _problem_for(report, seg_path)
    assert [s.modality for s in report.series] == ["CT"]


def test_a_seg_on_another_grid_is_named(tmp_path: Path) -> None:
    series = make_series(n_slices=3, rows=16, columns=16, modality="CT", description="CT SIJ")
    paths = write_series(series, tmp_path / "ct")
    coarse = make_series(n_slices=3, rows=8, columns=8, modality="CT", study_uid=series[0].StudyInstanceUID)
    seg = make_seg(coarse)
    seg.ReferencedSeriesSequence[0].SeriesInstanceUID = series[0].SeriesInstanceUID
    del seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    seg.FrameOfReferenceUID = series[0].FrameOfReferenceUID
    seg_path = write_seg(seg, tmp_path / "seg")

    report = validate_files([*paths, seg_path])

    assert "has 8x8 frames, but its source series" in _problem_for(report, seg_path)


def test_a_seg_of_a_rejected_series_says_so(
    tmp_path: Path, ct_with_seg: tuple[list[Dataset], list[Path], Dataset]
) -> None:
    _series, paths, seg = ct_with_seg
    seg_path = write_seg(seg, tmp_path / "seg")

    report = validate_files([*paths, seg_path], required_modality="MR")

    assert "which was rejected" in _problem_for(report, seg_path)
    assert report.series == []
