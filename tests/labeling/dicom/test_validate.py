"""validate_files: every bad case is reported with its file named, and the good series are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from labeling.dicom.validate import ValidationReport, validate_files
from tests.labeling.dicom.dicom_factory import make_series, write_series


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
