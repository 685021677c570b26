"""Uploaded files and archives on their way to an import job: saved, unpacked safely, validated, queued.

Uploads land in ``VAR_DIR/imports/upload-*`` (the web and worker processes must share that folder); the job
deletes the folder once it has imported it. Archives are unpacked with their member paths checked (no
absolute paths, no ``..``) and a size and file-count budget, so a zip bomb or zip slip writes nothing.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from labeling.dicom.validate import validate_files
from labeling.exceptions import InvalidInput
from labeling.models import ImportJob, Project
from labeling.services.deidentification import deidentify_profile
from labeling.services.ingest import (
    dicom_files_under,
    import_job_create,
    import_job_enqueue,
    registered_series,
)

#: An upload or zip may hold at most this much (uncompressed), so a zip bomb cannot fill the disk.
MAX_IMPORT_BYTES = 8 * 1024**3
MAX_IMPORT_FILES = 200_000


def uploads_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def _safe_member(name: str) -> Path | None:
    """The relative path of a zip member, or None when it would escape the target folder."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith(("/", "\\")) or ":" in parts[0]:
        return None
    return Path(*parts)


def _unzip(archive: Path, folder: Path, budget: list[int]) -> None:
    """Unpack ``archive`` into ``folder``; raise InvalidInput for a damaged, unsafe or oversized archive."""
    name = archive.name
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            for member in members:
                target = _safe_member(member.filename)
                if target is None:
                    raise InvalidInput(
                        f"{name}: member {member.filename!r} has an unsafe path", field="files"
                    )
                budget[0] -= member.file_size
                budget[1] -= 1
                if budget[0] < 0 or budget[1] < 0:
                    raise InvalidInput(
                        f"{name}: the upload is too large (over {MAX_IMPORT_BYTES} bytes or "
                        f"{MAX_IMPORT_FILES} files unpacked)",
                        field="files",
                    )
                out = folder / archive.stem / target
                out.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"{name} is not a readable zip archive ({exc})", field="files") from exc
    archive.unlink()


def _save_upload(stream: IO[bytes], target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)
    return target.stat().st_size


def import_upload_prepare(
    *, actor: User, project: Project, files: Sequence[tuple[str, IO[bytes]]]
) -> ImportJob:
    """Save uploaded files (zips unpacked) to a fresh folder, validate them, and queue an import job.

    Raises InvalidInput, leaving nothing behind, when there are no files, an archive is damaged or unsafe,
    or not one file passes validation (the message lists each file and why). ``files``: (name, stream).
    """
    if not files:
        raise InvalidInput("upload at least one DICOM file or a zip of them", field="files")
    base = uploads_dir()
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=base))
    try:
        budget = [MAX_IMPORT_BYTES, MAX_IMPORT_FILES]
        for index, (name, stream) in enumerate(files):
            relative = _safe_member(name) or Path(f"file-{index}")
            target = folder / f"{index:05d}" / relative.name
            budget[0] -= _save_upload(stream, target)
            if budget[0] < 0:
                raise InvalidInput(f"the upload is over {MAX_IMPORT_BYTES} bytes", field="files")
            if zipfile.is_zipfile(target) or target.suffix.lower() == ".zip":
                _unzip(target, target.parent, budget)
        paths = dicom_files_under(folder)
        modality = project.scheme.parsed.modality
        known = functools.partial(registered_series, profile=deidentify_profile(project))
        validation = validate_files(paths, required_modality=modality, known_series=known)
        if not validation.studies:
            reasons = "; ".join(p.reason for p in validation.problems[:20]) or "the upload holds no files"
            more = len(validation.problems) - 20
            raise InvalidInput(
                f"no importable DICOM series in the upload: {reasons}"
                + (f" (and {more} more)" if more > 0 else ""),
                field="files",
            )
        with transaction.atomic():
            job = import_job_create(
                actor=actor,
                project=project,
                source=f"upload of {len(files)} file(s)",
                params={"folder": str(folder), "cleanup": True},
                total=len(paths),
            )
            import_job_enqueue(job)
        return job
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def import_params_for_path(path: Path) -> dict[str, Any]:
    """Job parameters for a local folder (used in place), a zip (unpacked to a temporary folder) or one file."""
    if path.is_dir():
        return {"folder": str(path)}
    base = uploads_dir()
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="cli-", dir=base))
    if zipfile.is_zipfile(path):
        copy = folder / path.name
        shutil.copyfile(path, copy)
        _unzip(copy, folder, [MAX_IMPORT_BYTES, MAX_IMPORT_FILES])
    else:
        shutil.copyfile(path, folder / path.name)
    return {"folder": str(folder), "cleanup": True}
