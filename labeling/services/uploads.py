"""Uploaded files and archives on their way to an import job: saved, unpacked safely, validated, queued.

Uploads land in ``VAR_DIR/imports/upload-*`` (the web and worker processes must share that folder); the job
deletes the folder once it has imported it. Every member of an archive is checked before the first byte is
unpacked: a path that would escape the folder (absolute, ``..``, a drive), a symbolic link, an archive inside
the archive, a member that expands more than ``MAX_RATIO`` times its compressed size (past ``RATIO_FLOOR``
bytes), and the size and file-count budget of the whole upload (``MAX_IMPORT_BYTES``, ``MAX_IMPORT_FILES``,
as the archive declares them; zipfile never inflates a member past its declared size). A bad member is
skipped, nothing of it written, and named among the job's problems; the good members are imported. An
archive that cannot be read or is over the budget, or an upload with nothing importable, is a 400 naming
each member and why, and nothing of the upload stays on disk.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

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
#: A member may expand at most this many times its compressed size once it is over RATIO_FLOOR bytes (a zip
#: bomb's ratio is in the thousands; DICOM images deflate 2-10 times, a sparse SEG mask more, but it is small).
MAX_RATIO = 100
RATIO_FLOOR = 16 * 1024**2
#: Member names that are archives themselves: never opened (one level of unpacking only).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar", ".zst")
_S_IFMT, _S_IFLNK = 0o170000, 0o120000
#: Errors of a member's name rather than of the server: too long, a path through a file member, not encodable.
_MEMBER_NAME_ERRORS = {
    errno.ENAMETOOLONG,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.EILSEQ,
    errno.EINVAL,
}


def uploads_dir() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def _safe_member(name: str) -> Path | None:
    """The relative path of a zip member, or None when it would escape the target folder."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith(("/", "\\")) or ":" in parts[0]:
        return None
    return Path(*parts)


def _member_problem(member: zipfile.ZipInfo) -> str | None:
    """Why one member may not be unpacked, else None."""
    if _safe_member(member.filename) is None:
        return "has an unsafe path"
    if (member.external_attr >> 16) & _S_IFMT == _S_IFLNK:
        return "is a symbolic link (links are not unpacked)"
    if member.filename.lower().endswith(ARCHIVE_SUFFIXES):
        return "is an archive inside the archive (nested archives are not opened: upload its files)"
    if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(member.compress_size, 1):
        return (
            f"would expand {member.file_size / max(member.compress_size, 1):,.0f} times "
            f"(to {member.file_size:,} bytes; at most {MAX_RATIO} times): a zip bomb?"
        )
    return None


def _unzip(archive: Path, folder: Path, budget: list[int]) -> list[dict[str, str]]:
    """Unpack the good members of ``archive`` into ``folder``; return a problem ({path, reason}) per bad one.

    A member with an unsafe path, a link, a nested archive, a zip bomb's ratio, a name the file system
    refuses or damaged data is skipped (nothing of it stays on disk) and named; the other members are
    unpacked. InvalidInput when the archive as a whole cannot be read, or its members would take the upload
    past its size or file budget (``budget`` is [bytes, files] left to the upload), before anything is written.
    """
    name = archive.name
    problems: list[dict[str, str]] = []

    def refuse(member: zipfile.ZipInfo, problem: str) -> None:
        problems.append(
            {"path": f"{name}/{member.filename}", "reason": f"{name}: member {member.filename!r} {problem}"}
        )

    try:
        with zipfile.ZipFile(archive) as bundle:
            members = []
            for member in bundle.infolist():
                if member.is_dir():
                    continue
                if problem := _member_problem(member):
                    refuse(member, problem)
                else:
                    members.append(member)
            budget[0] -= sum(m.file_size for m in members)
            budget[1] -= len(members)
            if budget[0] < 0 or budget[1] < 0:
                raise InvalidInput(
                    f"{name}: the upload is too large (over {MAX_IMPORT_BYTES} bytes or "
                    f"{MAX_IMPORT_FILES} files unpacked)",
                    field="files",
                )
            for member in members:
                if problem := _unpack_member(bundle, member, folder / archive.stem):
                    refuse(member, problem)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # the directory itself is damaged
        raise InvalidInput(f"{name} is not a readable zip archive ({exc})", field="files") from exc
    archive.unlink()
    return problems


def _unpack_member(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path) -> str | None:
    """Write one member under ``folder``; return why it could not be (its partial file removed), else None."""
    out = folder / cast(Path, _safe_member(member.filename))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with bundle.open(member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        return None
    except OSError as exc:
        if exc.errno not in _MEMBER_NAME_ERRORS:
            _remove(out)
            raise  # the server's trouble (a full disk), not the archive's
        problem = f"cannot be unpacked ({exc.strerror or exc})"
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # a bad CRC: longer than declared, or altered
        problem = f"is damaged ({exc})"
    except NotImplementedError as exc:
        problem = f"cannot be unpacked ({exc})"
    except RuntimeError as exc:  # zipfile: an encrypted member needs a password
        problem = f"cannot be unpacked ({exc})"
    _remove(out)
    return problem


def _remove(path: Path) -> None:
    """Remove a partly written member, if there is one (its name may be one the file system refuses)."""
    with contextlib.suppress(OSError):
        path.unlink()


def _save_upload(stream: IO[bytes], target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)
    return target.stat().st_size


def import_upload_prepare(
    *, actor: User, project: Project, files: Sequence[tuple[str, IO[bytes]]]
) -> ImportJob:
    """Save uploaded files (zips unpacked) to a fresh folder, validate them, and queue an import job.

    Raises InvalidInput, leaving nothing behind, when there are no files, an archive cannot be read or is
    over the budget, or not one file passes validation (the message lists each file and why). Bad members
    of an archive are skipped and become problems of the job (params["problems"]). ``files``: (name, stream).
    """
    if not files:
        raise InvalidInput("upload at least one DICOM file or a zip of them", field="files")
    base = uploads_dir()
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=base))
    try:
        budget = [MAX_IMPORT_BYTES, MAX_IMPORT_FILES]
        refused: list[dict[str, str]] = []  # archive members not unpacked
        for index, (name, stream) in enumerate(files):
            relative = _safe_member(name) or Path(f"file-{index}")
            target = folder / f"{index:05d}" / relative.name
            budget[0] -= _save_upload(stream, target)
            if budget[0] < 0:
                raise InvalidInput(f"the upload is over {MAX_IMPORT_BYTES} bytes", field="files")
            if zipfile.is_zipfile(target) or target.suffix.lower() == ".zip":
                refused += _unzip(target, target.parent, budget)
        paths = dicom_files_under(folder)
        modality = project.scheme.parsed.modality
        known = functools.partial(registered_series, profile=deidentify_profile(project))
        validation = validate_files(paths, required_modality=modality, known_series=known)
        if not validation.studies:
            all_reasons = [p["reason"] for p in refused] + [p.reason for p in validation.problems]
            reasons = "; ".join(all_reasons[:20]) or "the upload holds no files"
            more = len(all_reasons) - 20
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
                params={"folder": str(folder), "cleanup": True, "problems": refused},
                total=len(paths),
            )
            if refused:  # shown at once; the job adds the problems of the files it reads
                job.problems = refused
                job.save(update_fields=["problems"])
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
        refused = _unzip(copy, folder, [MAX_IMPORT_BYTES, MAX_IMPORT_FILES])
        return {"folder": str(folder), "cleanup": True, "problems": refused}
    shutil.copyfile(path, folder / path.name)
    return {"folder": str(folder), "cleanup": True}
