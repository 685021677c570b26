"""Hostile imports (issue 16): each is refused with a message naming the file and why, and nothing of it is
written (no job, no rows, no file in the upload folder or the store, nothing outside them).

Archives: path traversal, symbolic links, zip bombs (ratio, absolute size, a member longer than it says),
nested archives, 10,000 tiny files. DICOM: absurd Rows x Columns x Frames (raw and compressed), unknown and
undecodable transfer syntaxes, a cut file whose pixel data is never read into memory, and a SOPInstanceUID
imported before with other pixels (or in another series): refused, the stored pixels kept.
The peak memory of each: ``python -m tests.bench.bench_hostile_import``.
"""

from __future__ import annotations

import io
import stat
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLossless, RLELossless

from labeling.dicom.validate import validate_files
from labeling.models import ImportJob, Instance, OutboxMessage, Study
from labeling.services import uploads
from labeling.services.ingest import import_job_run, import_paths
from tests.labeling.dicom.dicom_factory import make_series
from tests.labeling.factories import ProjectFactory
from tests.labeling.test_ingest import mri_files

# --- archives ------------------------------------------------------------------------------------------------


@pytest.fixture
def store_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DICOMWEB_URL = ""
    settings.DICOM_FOLDER = tmp_path / "store"
    settings.VAR_DIR = tmp_path / "var"
    settings.DEIDENTIFY_ON_IMPORT = False
    return settings.DICOM_FOLDER


def _zip(members: dict[str, bytes], *, name: str = "upload.zip", deflate: bool = True) -> io.BytesIO:
    data = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(data, "w", compression=method) as bundle:
        for member, content in members.items():
            bundle.writestr(member, content)
    data.seek(0)
    data.name = name
    return data


def _symlink_zip() -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as bundle:
        link = zipfile.ZipInfo("series/evil.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    data.seek(0)
    data.name = "links.zip"
    return data


def _lying_zip() -> io.BytesIO:
    """A member that inflates to 1 MiB while its headers say 1 KiB."""
    data = _zip({"big.dcm": b"\0" * 1024**2})
    raw = bytearray(data.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        at = raw.index(signature)
        raw[at + offset : at + offset + 4] = struct.pack("<I", 1024)
    patched = io.BytesIO(bytes(raw))
    patched.name = "lying.zip"
    return patched


def _upload(client: Any, project_id: int, files: list[io.BytesIO]) -> Any:
    return client.post(f"/api/projects/{project_id}/imports/upload/", {"files": files}, format="multipart")


def _nothing_written(world: Any, store_dir: Path, tmp_path: Path) -> None:
    assert not ImportJob.objects.exists() and not OutboxMessage.objects.exists()
    assert list(Study.objects.all()) == [world.case.study]
    imports = store_dir.parent / "var" / "imports"
    assert not imports.exists() or not list(imports.iterdir())
    assert not store_dir.exists() or not list(store_dir.rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["var"], ["store", "var"])


HOSTILE_ARCHIVES = [
    ("absolute_path", lambda: _zip({"/tmp/evil.dcm": b"x"}), "member '/tmp/evil.dcm' has an unsafe path"),
    ("dot_dot", lambda: _zip({"a/../../evil.dcm": b"x"}), "member 'a/../../evil.dcm' has an unsafe path"),
    ("backslashes", lambda: _zip({"..\\..\\evil.dcm": b"x"}), "has an unsafe path"),
    ("drive", lambda: _zip({"C:/evil.dcm": b"x"}), "member 'C:/evil.dcm' has an unsafe path"),
    ("symlink", _symlink_zip, "member 'series/evil.dcm' is a symbolic link"),
    (
        "bomb_ratio",
        lambda: _zip({"zeros.dcm": b"\0" * (32 * 1024**2)}),
        "member 'zeros.dcm' would expand 1,0",  # about 1,000 times
    ),
    ("lying_size", _lying_zip, "lying.zip: member 'big.dcm' is damaged (Bad CRC-32"),
    ("name_too_long", lambda: _zip({"x" * 300 + ".dcm": b"x"}), "cannot be unpacked (File name too long)"),
    (
        "path_through_a_file",
        lambda: _zip({"a": b"x", "a/b.dcm": b"x"}),
        "member 'a/b.dcm' cannot be unpacked (File exists)",
    ),
    (
        "nested",
        lambda: _zip({"ok/readme.txt": b"x", "inner.zip": _zip({"a.dcm": b"x"}).getvalue()}),
        "member 'inner.zip' is an archive inside the archive",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "archive", "message"), HOSTILE_ARCHIVES, ids=[a[0] for a in HOSTILE_ARCHIVES]
)
def test_a_hostile_archive_is_refused_naming_the_member_and_writes_nothing(
    world: Any, client_for: Any, store_dir: Path, tmp_path: Path, name: str, archive: Any, message: str
) -> None:
    response = _upload(client_for(world.admin), world.project.pk, [archive()])
    assert response.status_code == 400, response.content
    assert message in response.json()["detail"]
    _nothing_written(world, store_dir, tmp_path)


@pytest.mark.django_db
def test_an_upload_over_the_size_budget_is_refused_before_anything_is_unpacked(
    world: Any, client_for: Any, store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "MAX_IMPORT_BYTES", 1024**2)
    members = {f"part-{i}.dcm": bytes(range(256)) * 1024 for i in range(5)}  # 5 x 256 KiB, stored
    response = _upload(client_for(world.admin), world.project.pk, [_zip(members)])  # a 7 KiB archive
    assert response.status_code == 400
    assert "the upload is too large (over 1048576 bytes" in response.json()["detail"]
    _nothing_written(world, store_dir, tmp_path)


@pytest.mark.django_db
@pytest.mark.slow
def test_ten_thousand_tiny_files_are_each_named_and_nothing_is_kept(
    world: Any, client_for: Any, store_dir: Path, tmp_path: Path
) -> None:
    archive = _zip({f"tiny/{i:05d}.dcm": b"DICM" for i in range(10_000)})
    response = _upload(client_for(world.admin), world.project.pk, [archive])
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("no importable DICOM series in the upload: 00000.dcm is not a DICOM file")
    assert detail.endswith("(and 9980 more)")
    _nothing_written(world, store_dir, tmp_path)


@pytest.mark.django_db
def test_a_nested_archive_under_a_dicom_name_is_a_problem_of_its_own(
    world: Any, client_for: Any, store_dir: Path, tmp_path: Path
) -> None:
    disguised = {"disguised.dcm": _zip({"a.dcm": b"DICM"}).getvalue(), "notes.txt": b"x"}
    response = _upload(client_for(world.admin), world.project.pk, [_zip(disguised)])
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "disguised.dcm is an archive inside the upload: nested archives are not opened" in detail
    assert "notes.txt is not a DICOM file" in detail
    _nothing_written(world, store_dir, tmp_path)


def _corrupt(archive: io.BytesIO, member: str) -> io.BytesIO:
    """The archive with one byte of ``member``'s compressed data changed (its CRC check fails on reading)."""
    raw = bytearray(archive.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as bundle:
        info = bundle.getinfo(member)
    at = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    raw[at] ^= 0xFF
    damaged = io.BytesIO(bytes(raw))
    damaged.name = archive.name
    return damaged


@pytest.mark.django_db
def test_an_archive_with_some_bad_members_imports_the_good_ones_and_names_the_others(
    world: Any, client_for: Any, store_dir: Path, tmp_path: Path
) -> None:
    """One bad member refused the whole archive (a study of 6 good files lost to one stray link); now each
    bad member is a problem of the job, nothing of it is written, and the good files are imported."""
    study_uid, paths = mri_files(tmp_path / "in")
    members = {f"{p.parent.name}/{p.name}": p.read_bytes() for p in paths}
    members |= {
        "../../evil.dcm": b"x",
        "inner.zip": _zip({"a.dcm": b"x"}).getvalue(),
        "zeros.dcm": b"\0" * (32 * 1024**2),
        "x" * 300 + ".dcm": b"x",
        "broken.dcm": bytes(range(256)) * 64,
    }
    archive = _corrupt(_zip(members, name="mixed.zip"), "broken.dcm")
    link = _symlink_zip().getvalue()
    with zipfile.ZipFile(io.BytesIO(link)) as links, zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr(links.infolist()[0], links.read("series/evil.dcm"))
    archive.seek(0)

    response = _upload(client_for(world.admin), world.project.pk, [archive])
    assert response.status_code == 202, response.content
    job = response.json()
    reasons = {p["path"]: p["reason"] for p in job["problems"]}
    long_name = "x" * 300 + ".dcm"
    assert reasons == {
        "mixed.zip/../../evil.dcm": "mixed.zip: member '../../evil.dcm' has an unsafe path",
        "mixed.zip/inner.zip": "mixed.zip: member 'inner.zip' is an archive inside the archive (nested "
        "archives are not opened: upload its files)",
        "mixed.zip/zeros.dcm": reasons["mixed.zip/zeros.dcm"],
        f"mixed.zip/{long_name}": f"mixed.zip: member '{long_name}' cannot be unpacked (File name too long)",
        "mixed.zip/broken.dcm": reasons["mixed.zip/broken.dcm"],
        "mixed.zip/series/evil.dcm": "mixed.zip: member 'series/evil.dcm' is a symbolic link (links are not "
        "unpacked)",
    }
    assert reasons["mixed.zip/zeros.dcm"].startswith("mixed.zip: member 'zeros.dcm' would expand 1,0")
    assert reasons["mixed.zip/broken.dcm"].startswith("mixed.zip: member 'broken.dcm' is damaged (")
    # Nothing of a refused member on disk: the upload folder holds the good files only, nothing escaped.
    (upload,) = (store_dir.parent / "var" / "imports").iterdir()
    assert sorted(p.name for p in upload.rglob("*") if p.is_file()) == sorted(p.name for p in paths)
    assert not (tmp_path / "evil.dcm").exists() and not (store_dir.parent / "evil.dcm").exists()

    import_job_run(job_id=job["id"])
    done = ImportJob.objects.get(pk=job["id"])
    assert done.status == ImportJob.Status.SUCCEEDED and done.report["imported"] == [study_uid]
    assert {p["path"] for p in done.problems} == set(reasons)  # still named once the job has run
    assert Instance.objects.filter(series__study__study_uid=study_uid).count() == len(paths)


@pytest.mark.django_db
def test_a_symbolic_link_in_a_folder_import_is_not_followed(store_dir: Path, tmp_path: Path) -> None:
    """A folder import (``import_studies``) names a link and imports nothing through it."""
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "elsewhere")
    folder = tmp_path / "in"
    folder.mkdir()
    for path in paths:
        (folder / f"{path.parent.name}-{path.name}").symlink_to(path)
    report = import_paths(actor=None, paths=sorted(folder.iterdir()), project=project)
    assert report.imported == [] and len(report.problems) == len(paths)
    assert all("is a symbolic link: links are not followed" in p["reason"] for p in report.problems)
    assert not Study.objects.filter(study_uid=study_uid).exists() and not list(store_dir.rglob("*.dcm"))


# --- DICOM files ---------------------------------------------------------------------------------------------


def _one_file(tmp_path: Path, name: str, change: Any) -> Path:
    ds = make_series(n_slices=1, rows=16, columns=16)[0]
    change(ds)
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return path


def _absurd(ds: Dataset) -> None:
    ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 100_000


def _absurd_compressed(ds: Dataset) -> None:
    _absurd(ds)
    _compressed(RLELossless)(ds)


def _compressed(syntax: str) -> Any:
    def change(ds: Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([b"\0" * 64])
        ds["PixelData"].VR = "OB"

    return change


def _unknown_syntax(ds: Dataset) -> None:
    ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.10.1337.99"


DICOM_REFUSALS = [
    ("absurd_size", _absurd, "image too large: 65535 x 65535 pixels x 100000 frame(s)"),
    ("absurd_size_compressed", _absurd_compressed, "image too large: 65535 x 65535 pixels x 100000 frame(s)"),
    ("zero_rows", lambda ds: setattr(ds, "Rows", 0), "invalid image size (Rows 0"),
    ("unknown_syntax", _unknown_syntax, "unknown transfer syntax 1.2.826.0.1.3680043.10.1337.99"),
    (
        "undecodable_syntax",
        _compressed(JPEGLossless),
        "pixel data in JPEG Lossless, Non-Hierarchical (Process 14) (1.2.840.10008.1.2.4.57), which this "
        "server cannot decode",
    ),
]


@pytest.mark.parametrize(("name", "change", "message"), DICOM_REFUSALS, ids=[r[0] for r in DICOM_REFUSALS])
def test_a_file_that_cannot_be_decoded_safely_is_named(
    tmp_path: Path, name: str, change: Any, message: str
) -> None:
    path = _one_file(tmp_path, name, change)
    report = validate_files([path])
    assert not report.studies
    assert [p.path for p in report.problems] == [path]
    assert message in report.problems[0].reason, report.problems[0].reason


def test_a_compressed_file_that_can_be_decoded_passes(tmp_path: Path) -> None:
    def rle(ds: Dataset) -> None:
        ds.compress(RLELossless, encoding_plugin="pydicom")

    report = validate_files([_one_file(tmp_path, "rle", rle)])
    assert report.ok and len(report.series) == 1


def test_a_file_cut_inside_its_large_pixel_data_is_named_without_reading_it(tmp_path: Path) -> None:
    """32 MiB of pixels stay on disk (deferred) while the header is checked: the cut is found by offset."""

    def large(ds: Dataset) -> None:
        ds.Rows, ds.Columns = 4096, 4096
        ds.PixelData = bytes(4096 * 4096 * 2)

    path = _one_file(tmp_path, "cut", large)
    path.write_bytes(path.read_bytes()[:-1000])
    tracemalloc.start()
    try:
        report = validate_files([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.reason for p in report.problems] == [
        "cut.dcm is truncated: the file ends inside element (7FE0,0010)"
    ]
    assert peak < 4 * 1024**2, f"validation held {peak / 1024**2:.0f} MiB"


# --- a SOPInstanceUID imported before ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_file_with_a_known_sop_uid_and_other_pixels_is_refused_and_the_pixels_kept(
    store_dir: Path, tmp_path: Path
) -> None:
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "first")
    assert import_paths(actor=None, paths=paths, project=project).imported == [study_uid]
    stored = {p: p.read_bytes() for p in store_dir.rglob("*.dcm")}
    changed = dcmread(paths[0])
    changed.PixelData = bytes(len(changed.PixelData))  # the same UIDs, black pixels
    changed.save_as(paths[0], enforce_file_format=True)

    report = import_paths(actor=None, paths=paths, project=project)

    assert report.imported == [] and report.skipped == []
    assert [p["path"] for p in report.problems] == [paths[0].name]
    reason = report.problems[0]["reason"]
    assert f"its SOPInstanceUID {changed.SOPInstanceUID} was imported before with other pixels" in reason
    assert f"nothing of study {study_uid} was imported" in reason
    assert {p: p.read_bytes() for p in store_dir.rglob("*.dcm")} == stored  # not one byte replaced


@pytest.mark.django_db
def test_a_known_sop_uid_in_another_study_is_refused_and_the_first_stays(
    store_dir: Path, tmp_path: Path
) -> None:
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "first")
    import_paths(actor=None, paths=paths, project=project)
    stored = {p: p.read_bytes() for p in store_dir.rglob("*.dcm")}
    other_uid, other_paths = mri_files(tmp_path / "second", seed=7)
    thief = dcmread(other_paths[0])
    thief.SOPInstanceUID = thief.file_meta.MediaStorageSOPInstanceUID = dcmread(paths[0]).SOPInstanceUID
    thief.save_as(other_paths[0], enforce_file_format=True)

    report = import_paths(actor=None, paths=other_paths, project=project)

    assert report.imported == [] and len(report.problems) == 1
    assert (
        f"is already imported in series {dcmread(paths[0]).SeriesInstanceUID}" in report.problems[0]["reason"]
    )
    assert {p: p.read_bytes() for p in store_dir.rglob("*.dcm")} == stored
    assert not Study.objects.filter(study_uid=other_uid).exists()
    assert Instance.objects.get(sop_uid=thief.SOPInstanceUID).series.study.study_uid == study_uid


@pytest.mark.django_db
def test_the_same_files_again_are_still_a_quiet_no_op(store_dir: Path, tmp_path: Path) -> None:
    project = ProjectFactory()
    study_uid, paths = mri_files(tmp_path / "first")
    import_paths(actor=None, paths=paths, project=project)
    again = import_paths(actor=None, paths=paths, project=project)
    assert again.skipped == [study_uid] and again.problems == []
