"""DicomStore over a local folder: the embedded default. Files live at ROOT/<Study>/<Series>/<SOP>.dcm.

Searches and reads go through a persistent index shared by every process on the folder (web workers, Celery
workers): a small SQLite file, ``ROOT/.concord-index.sqlite3``, with each file's UIDs, QIDO attributes, size and
mtime. ``store`` and ``delete_study`` keep it up to date as they write, so no request walks the folder or reads
the headers of other studies: a fresh web worker answers its first request as fast as its hundredth (before,
each worker's first search read every header of the store: 12.8 s for the 48 demo studies).

Any other DICOM file dropped under ROOT is found by ``reindex()`` (``manage.py dicom_reindex``), which stats
every file and reads the headers only of files that are new or whose size or mtime changed. It runs by itself
when the index does not exist yet (a store written before the index, once), and when a request names a study,
series or instance the index does not know — at most once every ``MISS_REINDEX_S`` seconds across all
processes, so that requests for unknown UIDs cannot make the server walk the folder over and over.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread, dcmwrite
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset

from labeling.dicom.errors import (
    DicomInvalidRequest,
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreFull,
)
from labeling.dicom.proxy import Served, frames_media_type, multipart, multipart_stream
from labeling.dicom.render import frame_bytes, read_frames, render_png
from labeling.dicom.store import DicomJson, SearchFilters, dataset_to_json, is_uid, part10, tag_key

STUDY_KEYWORDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDescription",
)
SERIES_KEYWORDS = ("SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber", "BodyPartExamined")
INSTANCE_KEYWORDS = (
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
)
_HIDDEN = "."  # temporary and half-deleted entries start with a dot and are never indexed
#: The errors of a disk (or a quota) with no space left.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The index file, in the root (hidden, so never indexed itself).
INDEX_NAME = _HIDDEN + "concord-index.sqlite3"
#: A request for something the index does not know reindexes at most this often (seconds, all processes).
MISS_REINDEX_S = 5.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS file (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " study TEXT, series TEXT, sop TEXT, attributes TEXT)",
    "CREATE INDEX IF NOT EXISTS file_study ON file (study, series)",
    "CREATE INDEX IF NOT EXISTS file_sop ON file (sop)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


@dataclass(frozen=True)
class _Entry:
    """One indexed file: where it is, when it was read, and its QIDO attributes as DICOM JSON."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    attributes: DicomJson


def _pick(dataset: Dataset, keywords: Iterable[str]) -> DicomJson:
    subset = Dataset()
    for keyword in keywords:
        if keyword in dataset:
            subset[keyword] = dataset[keyword]
    return subset.to_json_dict()


def _values(item: DicomJson, key: str) -> list[str]:
    values = item.get(key, {}).get("Value") or []
    return [str(v["Alphabetic"]) if isinstance(v, dict) else str(v) for v in values if v is not None]


def _match(values: list[str], pattern: str, vr: str) -> bool:
    """QIDO-style match: universal, UID list, date/time range, wildcard, or exact (PN case-insensitive)."""
    if pattern in ("", "*"):
        return True
    if vr == "UI":
        return bool(set(values) & set(pattern.split("\\")))
    if vr in ("DA", "TM", "DT") and "-" in pattern:
        low, _, high = pattern.partition("-")
        return any((not low or low <= v) and (not high or v <= high) for v in values)
    if vr == "PN":
        values, pattern = [v.lower() for v in values], pattern.lower()
    if "*" in pattern or "?" in pattern:
        return any(fnmatch.fnmatchcase(v, pattern) for v in values)
    return pattern in values


class LocalFolderStore:
    """A DicomStore over a folder of DICOM files (created if missing); thread-safe, multi-process friendly."""

    supports_delete = True
    uid_lists = True  # QIDO UID-list matching
    link_root = None  # metadata carries no BulkDataURI

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._index_path = self.root / INDEX_NAME
        self._local = threading.local()  # one SQLite connection per thread (and per process: see _db)
        self._built = False

    def __repr__(self) -> str:
        return f"LocalFolderStore({str(self.root)!r})"

    # ---------------------------------------------------------------- index

    def _db(self) -> sqlite3.Connection:
        """This thread's connection to the index (a new one after a fork: connections are not fork-safe)."""
        found = getattr(self._local, "db", None)
        if found is not None and found[0] == os.getpid():
            return found[1]  # type: ignore[no-any-return]
        db = sqlite3.connect(self._index_path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            db.execute(statement)
        self._local.db = (os.getpid(), db)
        return db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the index (taken at once, so that concurrent writers queue, not fail)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _ensure_built(self) -> None:
        """Build the index once if this folder has none yet (a store written before the index existed)."""
        if self._built:
            return
        if self._db().execute("SELECT 1 FROM meta WHERE key = 'built'").fetchone() is None:
            self.reindex()
        self._built = True

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def _row_entry(self, row: tuple[str, str, str, str, str]) -> _Entry:
        path, study, series, sop, attributes = row
        return _Entry(self.root / path, study, series, sop, json.loads(attributes))

    def _read_entry(self, path: Path) -> _Entry | None:
        try:
            header = dcmread(path, stop_before_pixels=True)
            uids = (str(header.StudyInstanceUID), str(header.SeriesInstanceUID), str(header.SOPInstanceUID))
        except Exception:  # any foreign file may sit here; pydicom raises many types on junk bytes
            return None  # not DICOM, damaged, or without UIDs: invisible to the store
        attributes = _pick(header, (*STUDY_KEYWORDS, *SERIES_KEYWORDS, *INSTANCE_KEYWORDS))
        return _Entry(path, *uids, attributes=attributes)

    def reindex(self) -> dict[str, int]:
        """Bring the index in line with the folder: stat every file, read the headers of new or changed files
        only, forget files that are gone. Returns {"files", "read", "removed"}."""
        db = self._db()
        known = {
            path: (size, mtime_ns)
            for path, size, mtime_ns in db.execute("SELECT path, size, mtime_ns FROM file").fetchall()
        }
        changed: list[tuple[str, int, int, _Entry | None]] = []
        present: set[str] = set()
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(_HIDDEN)]
            for name in files:
                if name.startswith(_HIDDEN):
                    continue
                path = Path(folder, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue  # removed while walking
                relative = self._relative(path)
                present.add(relative)
                if known.get(relative) != (stat.st_size, stat.st_mtime_ns):
                    changed.append((relative, stat.st_size, stat.st_mtime_ns, self._read_entry(path)))
        gone = [path for path in known if path not in present]
        with self._writing() as db:
            db.executemany("DELETE FROM file WHERE path = ?", [(path,) for path in gone])
            db.executemany(
                "INSERT OR REPLACE INTO file VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_row(relative, size, mtime_ns, entry) for relative, size, mtime_ns, entry in changed],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('built', '1')")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('reindexed_at', ?)", (str(time.time()),))
        return {"files": len(present), "read": len(changed), "removed": len(gone)}

    def _reindex_after_miss(self) -> bool:
        """Reindex for a request that named something unknown, unless any process did within MISS_REINDEX_S;
        True when it reindexed (the caller looks again)."""
        with self._writing() as db:  # one process claims the reindex; the others see its time
            found = db.execute("SELECT value FROM meta WHERE key = 'reindexed_at'").fetchone()
            due = found is None or time.time() - float(found[0]) >= MISS_REINDEX_S
            if due:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('reindexed_at', ?)", (str(time.time()),))
        if due:
            self.reindex()
        return due

    def _entries(self, study_uid: str | None = None, series_uid: str | None = None) -> dict[str, _Entry]:
        """SOPInstanceUID → entry of the indexed instances (of a study, or one of its series), canonical paths
        first where one instance has two files."""
        self._ensure_built()
        query = "SELECT path, study, series, sop, attributes FROM file WHERE study IS NOT NULL"
        args: list[str] = []
        if study_uid is not None:
            query += " AND study = ?"
            args.append(study_uid)
            if series_uid is not None:
                query += " AND series = ?"
                args.append(series_uid)
        index: dict[str, _Entry] = {}
        for row in self._db().execute(query, args).fetchall():
            entry = self._row_entry(row)
            if entry.sop_uid not in index or entry.path == self._canonical(entry):
                index[entry.sop_uid] = entry
        return index

    def _known(self, sop_uid: str) -> list[_Entry]:
        """The indexed files of one instance."""
        self._ensure_built()
        rows = self._db().execute(
            "SELECT path, study, series, sop, attributes FROM file WHERE sop = ?", (sop_uid,)
        )
        return [self._row_entry(row) for row in rows.fetchall()]

    def _index_stored(self, path: Path, dataset: Dataset, uids: Sequence[str]) -> None:
        """Record a file ``store`` wrote (and forget other files of the same instance, already unlinked)."""
        stat = path.stat()
        attributes = _pick(dataset, (*STUDY_KEYWORDS, *SERIES_KEYWORDS, *INSTANCE_KEYWORDS))
        entry = _Entry(path, uids[0], uids[1], uids[2], attributes)
        relative = self._relative(path)
        with self._writing() as db:
            db.execute("DELETE FROM file WHERE sop = ? AND path != ?", (uids[2], relative))
            db.execute(
                "INSERT OR REPLACE INTO file VALUES (?, ?, ?, ?, ?, ?, ?)",
                _row(relative, stat.st_size, stat.st_mtime_ns, entry),
            )

    def _canonical(self, entry: _Entry) -> Path:
        return self.root / entry.study_uid / entry.series_uid / f"{entry.sop_uid}.dcm"

    def _locate(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Return the file of one instance; DicomNotFound if absent (bad UIDs never touch the filesystem)."""
        what = f"instance {sop_uid} of series {series_uid}"
        if not all(is_uid(uid) for uid in (study_uid, series_uid, sop_uid)):
            raise DicomNotFound(f"{what}: not found (invalid UID)")
        path = self.root / study_uid / series_uid / f"{sop_uid}.dcm"
        if path.is_file():
            return path
        # a file dropped in under another layout: the index knows where (after a reindex if it is new)
        for attempt in range(2):
            for entry in self._known(sop_uid):
                if (entry.study_uid, entry.series_uid) == (study_uid, series_uid) and entry.path.is_file():
                    return entry.path
            if attempt or not self._reindex_after_miss():
                break
        raise DicomNotFound(f"{what}: not found")

    def file_path(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """The file holding one instance (for readers that want files, e.g. a training snapshot)."""
        return self._locate(study_uid, series_uid, sop_uid)

    def _read(self, path: Path, *, pixels: bool) -> Dataset:
        try:
            return dcmread(path, stop_before_pixels=not pixels)
        except FileNotFoundError as exc:
            raise DicomNotFound(f"{path.name}: not found (deleted meanwhile)") from exc
        except Exception as exc:  # a damaged file raises many types inside pydicom
            raise DicomStoreError(f"cannot read {path}: {exc}") from exc

    # ---------------------------------------------------------------- QIDO-like search

    def _search(
        self,
        group_by: str,
        filters: SearchFilters | None,
        limit: int | None,
        within: dict[str, str],
    ) -> list[DicomJson]:
        """Group indexed instances by ``group_by`` (a UID keyword), filter the groups, and sort them."""
        unsupported = [key for key in (filters or {}) if tag_key(key) not in _SEARCHABLE]
        if unsupported:
            raise DicomInvalidRequest(
                f"unsupported search filter {unsupported}; use one of {sorted(_SEARCHABLE_NAMES)}"
            )
        study_uid, series_uid = within.get("StudyInstanceUID"), within.get("SeriesInstanceUID")
        entries = self._entries(study_uid, series_uid)
        if not entries and study_uid is not None and self._reindex_after_miss():
            entries = self._entries(study_uid, series_uid)  # a study or series dropped in meanwhile
        groups: dict[str, list[_Entry]] = {}
        for entry in entries.values():
            groups.setdefault(_values(entry.attributes, tag_key(group_by))[0], []).append(entry)
        results = [self._summary(group_by, members) for members in groups.values()]
        results = [item for item in results if self._matches(item, filters or {})]
        order = {"StudyInstanceUID": "StudyDate", "SeriesInstanceUID": "SeriesNumber"}.get(
            group_by, "InstanceNumber"
        )
        results.sort(key=lambda item: (_sort_number(item, order), _values(item, tag_key(group_by))))
        return results[:limit] if limit is not None else results

    def _summary(self, group_by: str, members: list[_Entry]) -> DicomJson:
        """Return the QIDO result for one study, series or instance, with the usual derived counts."""
        first = members[0].attributes
        own = {
            "StudyInstanceUID": STUDY_KEYWORDS,
            "SeriesInstanceUID": ("StudyInstanceUID", *STUDY_KEYWORDS, *SERIES_KEYWORDS),
        }.get(
            group_by,
            ("StudyInstanceUID", "SeriesInstanceUID", *STUDY_KEYWORDS, *SERIES_KEYWORDS, *INSTANCE_KEYWORDS),
        )
        item = {tag_key(k): first[tag_key(k)] for k in own if tag_key(k) in first}
        if group_by == "StudyInstanceUID":
            modalities = sorted({m for e in members for m in _values(e.attributes, tag_key("Modality"))})
            item[tag_key("ModalitiesInStudy")] = {"vr": "CS", "Value": modalities}
            n_series = len({e.series_uid for e in members})
            item[tag_key("NumberOfStudyRelatedSeries")] = {"vr": "IS", "Value": [n_series]}
            item[tag_key("NumberOfStudyRelatedInstances")] = {"vr": "IS", "Value": [len(members)]}
        elif group_by == "SeriesInstanceUID":
            item[tag_key("NumberOfSeriesRelatedInstances")] = {"vr": "IS", "Value": [len(members)]}
        return dict(sorted(item.items()))

    @staticmethod
    def _matches(item: DicomJson, filters: SearchFilters) -> bool:
        """Return whether a QIDO result matches every filter (keys already checked by _search)."""
        for key, pattern in filters.items():
            tag = tag_key(key)
            if tag == tag_key("Modality") and tag_key("ModalitiesInStudy") in item:
                tag = tag_key("ModalitiesInStudy")
            if not _match(_values(item, tag), str(pattern), dictionary_VR(int(tag, 16))):
                return False
        return True

    def search_studies(
        self, filters: SearchFilters | None = None, *, limit: int | None = None
    ) -> list[DicomJson]:
        """Return study-level results; ``Modality`` matches any series of the study."""
        return self._search("StudyInstanceUID", filters, limit, {})

    def search_series(
        self,
        study_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return series-level results, within one study if ``study_uid`` is given."""
        within = {"StudyInstanceUID": study_uid} if study_uid else {}
        return self._search("SeriesInstanceUID", filters, limit, within)

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return instance-level results, within one study/series if given."""
        within = {k: v for k, v in (("StudyInstanceUID", study_uid), ("SeriesInstanceUID", series_uid)) if v}
        return self._search("SOPInstanceUID", filters, limit, within)

    # ---------------------------------------------------------------- retrieve

    def series_metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """Return the metadata (no pixel data) of every instance of a series, by InstanceNumber."""
        instances = self.search_instances(study_uid, series_uid)
        if not instances:
            raise DicomNotFound(f"metadata of series {series_uid}: not found")
        sop_uids = [_values(item, tag_key("SOPInstanceUID"))[0] for item in instances]
        return [self.instance_metadata(study_uid, series_uid, sop_uid) for sop_uid in sop_uids]

    def study_metadata(self, study_uid: str) -> list[DicomJson]:
        """Return the metadata of every instance of a study, series by series; DicomNotFound if absent."""
        series = [_values(s, tag_key("SeriesInstanceUID"))[0] for s in self.search_series(study_uid)]
        if not series:
            raise DicomNotFound(f"metadata of study {study_uid}: not found")
        return [item for uid in series for item in self.series_metadata(study_uid, uid)]

    def instance_metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> DicomJson:
        """Return the metadata of one instance as DICOM JSON without bulk data."""
        return dataset_to_json(self._read(self._locate(study_uid, series_uid, sop_uid), pixels=False))

    def instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """Return one instance, pixel data included."""
        return self._read(self._locate(study_uid, series_uid, sop_uid), pixels=True)

    def frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int]
    ) -> list[bytes]:
        """Return the stored bytes of the given 1-based frames (raw pixels for uncompressed syntaxes)."""
        if not frame_numbers:
            raise DicomInvalidRequest("at least one frame number is needed")
        return self._frames(study_uid, series_uid, sop_uid, frame_numbers)[1]

    def _frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int]
    ) -> tuple[Dataset, list[bytes]]:
        """The instance's header and the frames' stored bytes, read at their offsets where the file allows."""
        path = self._locate(study_uid, series_uid, sop_uid)
        try:
            found = read_frames(path, frame_numbers)
        except FileNotFoundError as exc:
            raise DicomNotFound(f"{path.name}: not found (deleted meanwhile)") from exc
        except DicomStoreError:
            raise
        except Exception as exc:  # a damaged file raises many types inside pydicom
            raise DicomStoreError(f"cannot read {path}: {exc}") from exc
        if found is not None:
            return found
        dataset = self._read(path, pixels=True)
        return dataset, [frame_bytes(dataset, number) for number in frame_numbers]

    def rendered(
        self, study_uid: str, series_uid: str, sop_uid: str, *, media_type: str = "image/png"
    ) -> bytes:
        """Return the first frame as PNG (the only media type this store renders)."""
        if media_type != "image/png":
            raise DicomOperationUnsupported(f"the local store renders image/png only, not {media_type}")
        return render_png(self.instance(study_uid, series_uid, sop_uid))

    # ---------------------------------------------------------------- served (the DICOMweb endpoint)

    def serve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int], accept: str
    ) -> Served:
        """The frames as multipart/related octet-stream parts in the stored syntax; 406 for any other Accept."""
        if not frame_numbers:
            raise DicomInvalidRequest("at least one frame number is needed")
        dataset, frames = self._frames(study_uid, series_uid, sop_uid, frame_numbers)
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        media_type = frames_media_type(
            accept, str(syntax) if syntax is not None and syntax.is_compressed else None
        )
        return multipart(frames, media_type)

    def serve_rendered(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] | None,
        accept: str,
        query: str | None = None,
    ) -> Served:
        """The first frame as PNG; other frames, media types (and rendering parameters) are unsupported (406)."""
        if frame_numbers is not None and list(frame_numbers) != [1]:
            raise DicomOperationUnsupported("the local store renders the first frame only")
        if not any(kind in accept for kind in ("image/png", "image/*", "*/*")):
            raise DicomOperationUnsupported("the local store renders image/png only")
        return Served.whole("image/png", self.rendered(study_uid, series_uid, sop_uid))

    def serve_instances(self, study_uid: str, series_uid: str | None, sop_uid: str | None) -> Served:
        """A study, series or instance as multipart/related; type="application/dicom", one file in memory at a time."""
        if series_uid is not None and sop_uid is not None:
            targets = [(series_uid, sop_uid)]
        else:
            targets = [
                (_values(i, tag_key("SeriesInstanceUID"))[0], _values(i, tag_key("SOPInstanceUID"))[0])
                for i in self.search_instances(study_uid, series_uid)
            ]
        if not targets:
            raise DicomNotFound(f"study {study_uid}, series {series_uid}: not found")
        parts = (_part10_bytes(self.instance(study_uid, se, sop)) for se, sop in targets)
        return multipart_stream(parts, "application/dicom")

    # ---------------------------------------------------------------- store and delete

    def store(self, datasets: Sequence[Dataset]) -> list[str]:
        """Write each instance atomically to its canonical path; a re-stored SOPInstanceUID replaces the old file.

        Raises DicomStoreError for a dataset without valid UIDs, DicomStoreFull when the disk has no space left
        (in both cases nothing of that dataset is left behind: no partial file, no new empty folder).
        """
        self._ensure_built()
        stored = []
        for dataset in datasets:
            uids = [
                str(dataset.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
            ]
            if not all(is_uid(uid) for uid in uids):
                raise DicomStoreError(f"cannot store an instance with invalid or missing UIDs {uids}")
            try:
                target = self.root.joinpath(*uids[:2], f"{uids[2]}.dcm")
                self._write_atomically(part10(dataset), target)
            except OSError as exc:
                if exc.errno in NO_SPACE:
                    raise DicomStoreFull(
                        f"the local image store is full (no space left on the disk of {self.root}): instance "
                        f"{uids[2]} was not stored; free disk space, then import again"
                    ) from exc
                raise DicomStoreError(f"cannot store instance {uids[2]}: {exc}") from exc
            except ValueError as exc:
                raise DicomStoreError(f"cannot store instance {uids[2]}: {exc}") from exc
            for previous in self._known(uids[2]):
                if previous.path != target:  # the same instance under another name: keep one copy
                    previous.path.unlink(missing_ok=True)
            self._index_stored(target, dataset, uids)
            stored.append(uids[2])
        return stored

    @staticmethod
    def _write_atomically(dataset: Dataset, target: Path) -> None:
        """Write to a hidden temporary file in the target's folder, then ``os.replace`` it into place; on any
        failure (a full disk) the temporary file and the folders this call created are removed."""
        created = [p for p in (target.parent.parent, target.parent) if not p.exists()]
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=_HIDDEN + "tmp-", suffix=".dcm", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    dcmwrite(stream, dataset, enforce_file_format=True)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except BaseException:
            for folder in reversed(created):
                with contextlib.suppress(OSError):  # removed only when still empty (another writer's file)
                    folder.rmdir()
            raise

    def delete_study(self, study_uid: str) -> None:
        """Delete every file of a study (its folder is renamed away first, so readers never see half of it)."""
        paths = []
        if is_uid(study_uid):
            self._ensure_built()
            rows = self._db().execute("SELECT path FROM file WHERE study = ?", (study_uid,)).fetchall()
            paths = [self.root / path for (path,) in rows]
        folder = self.root / study_uid if is_uid(study_uid) else None
        if not paths and not (folder and folder.is_dir()):
            raise DicomNotFound(f"delete of study {study_uid}: not found")
        try:
            if folder and folder.is_dir():
                doomed = self.root / f"{_HIDDEN}deleting-{uuid.uuid4().hex}"
                os.replace(folder, doomed)
                shutil.rmtree(doomed)
            for path in paths:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise DicomStoreError(f"delete of study {study_uid}: {exc}") from exc
        finally:
            with self._writing() as db:
                db.executemany(
                    "DELETE FROM file WHERE path = ?", [(self._relative(p),) for p in paths if not p.exists()]
                )


def _row(relative: str, size: int, mtime_ns: int, entry: _Entry | None) -> tuple[object, ...]:
    """The index row of one file (UIDs and attributes None: not DICOM, kept so it is not read again)."""
    if entry is None:
        return (relative, size, mtime_ns, None, None, None, None)
    attributes = json.dumps(entry.attributes, separators=(",", ":"))
    return (relative, size, mtime_ns, entry.study_uid, entry.series_uid, entry.sop_uid, attributes)


def _part10_bytes(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _sort_number(item: DicomJson, keyword: str) -> str:
    """Return a sortable string for a numeric or date attribute (absent values sort first)."""
    values = _values(item, tag_key(keyword))
    if not values:
        return ""
    value = values[0]
    return value.rjust(12, "0") if value.isdigit() else value


_SEARCHABLE_NAMES = frozenset(
    (*STUDY_KEYWORDS, *SERIES_KEYWORDS, *INSTANCE_KEYWORDS, "ModalitiesInStudy", "StudyInstanceUID")
)
_SEARCHABLE = frozenset(tag_key(name) for name in _SEARCHABLE_NAMES)
