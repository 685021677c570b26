"""LocalFolderStore specifics: layout on disk, atomic writes, foreign files, unsafe UIDs, QIDO-like matching."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from labeling.dicom import DicomNotFound, DicomStoreError, LocalFolderStore
from labeling.dicom.store import json_value
from tests.labeling.dicom.dicom_factory import make_series, write_series


def _files(root: Path) -> list[Path]:
    """The files under root, but the store's own hidden ones (its index)."""
    return sorted(
        Path(folder, name) for folder, _, names in os.walk(root) for name in names if not name.startswith(".")
    )


def test_instances_are_written_as_study_series_sop_files(
    local_store: LocalFolderStore, mr_series: list[Dataset]
) -> None:
    local_store.store(mr_series)
    local_store.store(mr_series)

    expected = sorted(
        local_store.root / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        for ds in mr_series
    )
    assert _files(local_store.root) == expected  # no temporary files, no duplicates


def test_restoring_a_foreign_file_keeps_a_single_copy(
    local_store: LocalFolderStore, mr_series: list[Dataset]
) -> None:
    (foreign,) = write_series(mr_series[:1], local_store.root / "dropped")
    local_store.store(mr_series[:1])

    assert _files(local_store.root) == [
        local_store.root
        / mr_series[0].StudyInstanceUID
        / mr_series[0].SeriesInstanceUID
        / f"{mr_series[0].SOPInstanceUID}.dcm"
    ]
    assert not foreign.exists()


def test_files_dropped_into_the_folder_are_found_and_non_dicom_is_ignored(
    local_store: LocalFolderStore,
) -> None:
    series = make_series(n_slices=2, modality="CT", description="CT SIJ", patient_id="PHANTOM-CT")
    write_series(series, local_store.root / "incoming")
    (local_store.root / "README.txt").write_text("not DICOM")

    assert local_store.reindex() == {"files": 3, "read": 3, "removed": 0}
    (study,) = local_store.search_studies({"Modality": "CT"})
    assert json_value(study, "ModalitiesInStudy") == "CT"
    sop_uid = series[1].SOPInstanceUID
    frames = local_store.frames(series[0].StudyInstanceUID, series[0].SeriesInstanceUID, sop_uid, [1])
    assert frames == [series[1].PixelData]


def test_a_dropped_in_file_is_found_by_one_reindex_and_then_read_without_walking_the_folder(
    local_store: LocalFolderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    series = make_series(n_slices=2, modality="CT", description="CT SIJ", patient_id="PHANTOM-CT")
    first, second = write_series(series, local_store.root / "incoming")
    uids = (series[0].StudyInstanceUID, series[0].SeriesInstanceUID)
    walks = []
    real_walk = os.walk
    monkeypatch.setattr(os, "walk", lambda *a, **k: walks.append(a) or real_walk(*a, **k))

    for ds in series:  # a viewer fetching every slice: the first miss reindexes, the rest are in the index
        assert local_store.frames(*uids, ds.SOPInstanceUID, [1]) == [ds.PixelData]
    assert len(local_store.search_instances(*uids)) == 2
    assert len(walks) == 1

    changed = make_series(n_slices=1, modality="CT", description="CT SIJ", patient_id="PHANTOM-CT", seed=5)[0]
    changed.StudyInstanceUID, changed.SeriesInstanceUID = uids
    changed.SOPInstanceUID = series[1].SOPInstanceUID
    write_series([changed], local_store.root / "incoming-2")
    second.unlink()  # the instance moved: found again by a reindex
    assert local_store.reindex() == {"files": 2, "read": 1, "removed": 1}
    assert local_store.frames(*uids, series[1].SOPInstanceUID, [1]) == [changed.PixelData]
    first.unlink()
    with pytest.raises(DicomNotFound):
        local_store.frames(*uids, series[0].SOPInstanceUID, [1])


def test_unknown_uids_reindex_at_most_once_in_a_while(
    local_store: LocalFolderStore, mr_series: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    local_store.store(mr_series)
    walks = []
    real_walk = os.walk
    monkeypatch.setattr(os, "walk", lambda *a, **k: walks.append(a) or real_walk(*a, **k))
    ds = mr_series[0]

    for n in range(20):  # someone asking for made-up instances and studies
        with pytest.raises(DicomNotFound):
            local_store.instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, f"1.2.3.{n}")
        assert local_store.search_series(f"1.2.4.{n}") == []
    assert len(walks) <= 1


def test_a_new_store_on_an_indexed_folder_reads_no_header_and_walks_nothing(
    tmp_path: Path, mr_series: list[Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh web worker's first request: before the shared index, it read every header of the store."""
    LocalFolderStore(tmp_path).store(mr_series)
    import labeling.dicom.local as local

    reads, walks = [], []
    real_read, real_walk = local.dcmread, os.walk
    monkeypatch.setattr(local, "dcmread", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    monkeypatch.setattr(os, "walk", lambda *a, **k: walks.append(a) or real_walk(*a, **k))
    fresh = LocalFolderStore(tmp_path)
    ds = mr_series[0]

    assert len(fresh.search_studies()) == 1
    assert len(fresh.search_instances(ds.StudyInstanceUID, ds.SeriesInstanceUID)) == 3
    assert (walks, reads) == ([], [])
    assert fresh.series_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert walks == [] and len(reads) == 3  # the series' own headers, nothing else


def test_a_folder_written_before_the_index_is_indexed_once(tmp_path: Path, mr_series: list[Dataset]) -> None:
    LocalFolderStore(tmp_path).store(mr_series)
    for name in os.listdir(tmp_path):
        if name.startswith(".concord-index"):
            os.remove(tmp_path / name)  # as a store of an older version left it

    store = LocalFolderStore(tmp_path)
    (study,) = store.search_studies({"PatientID": mr_series[0].PatientID})
    assert json_value(study, "NumberOfStudyRelatedInstances") == 3


def test_another_store_on_the_same_folder_sees_new_writes(tmp_path: Path, mr_series: list[Dataset]) -> None:
    reader, writer = LocalFolderStore(tmp_path), LocalFolderStore(tmp_path)
    assert reader.search_studies() == []

    writer.store(mr_series)

    assert len(reader.search_instances(mr_series[0].StudyInstanceUID)) == 3
    writer.delete_study(mr_series[0].StudyInstanceUID)
    assert reader.search_studies() == []


@pytest.mark.parametrize("bad_uid", ["../../etc/passwd", "..", "1.2/../3", "", "1.2.3" * 20])
def test_unsafe_uids_are_not_found_and_never_reach_the_filesystem(
    local_store: LocalFolderStore, bad_uid: str
) -> None:
    with pytest.raises(DicomNotFound):
        local_store.instance("1.2.3", "1.2.4", bad_uid)
    with pytest.raises(DicomNotFound):
        local_store.delete_study(bad_uid)


def test_storing_a_dataset_without_uids_is_refused(
    local_store: LocalFolderStore, mr_series: list[Dataset]
) -> None:
    del mr_series[0].SOPInstanceUID
    with pytest.raises(DicomStoreError):
        local_store.store(mr_series[:1])
    assert _files(local_store.root) == []


def test_search_supports_wildcards_uid_lists_and_date_ranges(local_store: LocalFolderStore) -> None:
    first = make_series(n_slices=1, patient_id="PHANTOM-A")
    second = make_series(n_slices=1, patient_id="PHANTOM-B", description="STIR")
    local_store.store(first + second)
    uids = f"{first[0].StudyInstanceUID}\\{second[0].StudyInstanceUID}"

    assert len(local_store.search_studies({"PatientID": "PHANTOM-*"})) == 2
    assert len(local_store.search_studies({"PatientID": "PHANTOM-?"})) == 2
    assert len(local_store.search_studies({"PatientID": "PHANTOM-A"})) == 1
    assert len(local_store.search_studies({"StudyInstanceUID": uids})) == 2
    assert len(local_store.search_studies({"StudyDate": "20250101-20261231"})) == 2
    assert local_store.search_studies({"StudyDate": "-20191231"}) == []
    assert len(local_store.search_series(filters={"SeriesDescription": "STIR"})) == 1
    assert len(local_store.search_studies(limit=1)) == 1


def test_an_unsupported_filter_is_refused_even_on_an_empty_folder(local_store: LocalFolderStore) -> None:
    with pytest.raises(ValueError, match="unsupported search filter"):
        local_store.search_studies({"ImageComments": "x"})


def test_frame_outside_the_instance_is_not_found(
    local_store: LocalFolderStore, mr_series: list[Dataset]
) -> None:
    local_store.store(mr_series)
    ds = mr_series[0]
    with pytest.raises(DicomNotFound):
        local_store.frames(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, [2])


def _multiframe(n_frames: int, rows: int, *, compressed: bool) -> tuple[Dataset, list[bytes]]:
    """One multi-frame instance of ``n_frames`` random 16-bit ``rows`` x ``rows`` frames (RLE fragments of
    arbitrary bytes when ``compressed``: the store serves the stored bytes, it never decodes them)."""
    rng = np.random.default_rng(7)
    ds = make_series(n_slices=1, rows=rows, columns=rows)[0]
    frames = [rng.integers(0, 4096, rows * rows, dtype="<u2").tobytes() for _ in range(n_frames)]
    ds.NumberOfFrames = n_frames
    if compressed:
        frames = [f[: len(f) // 3 * 2] for f in frames]  # even lengths, as fragments must be
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = b"".join(frames)
    return ds, frames


@pytest.mark.parametrize("compressed", [False, True], ids=["native", "encapsulated"])
def test_frames_of_a_multiframe_file_are_read_at_their_offset(
    local_store: LocalFolderStore, compressed: bool
) -> None:
    """Issue 16: a viewer asks for a multi-frame instance's frames one by one; each request read the whole
    pixel data (here 25 MiB, 200 frames: 5 GiB read to show them all). Now only the frame's own bytes."""
    ds, frames = _multiframe(200, 256, compressed=compressed)
    local_store.store([ds])
    uids = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    assert local_store.frames(*uids, [1, 200]) == [frames[0], frames[199]]
    served = local_store.serve_frames(*uids, [100], "*/*")
    assert frames[99] in b"".join(served.chunks)

    peaks = []
    for number in (2, 57, 133, 199):
        tracemalloc.start()
        (got,) = local_store.frames(*uids, [number])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert got == frames[number - 1]
    frame_size = len(frames[0])
    assert max(peaks) < 8 * frame_size, f"peak {max(peaks):,} bytes for a {frame_size:,}-byte frame"
