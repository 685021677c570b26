"""Per-assignment pseudonymous UIDs: a reader's assignment is served as a study of its own. Django-free.

Each real UID of a study (study, series, instance, frame of reference) becomes, within one *scope* (one
assignment), ``2.25.<128 bits of HMAC-SHA256(secret, scope, uid)>``: stable (the same assignment always
sees the same UIDs, so a viewer's caches and measurements hold), different for every assignment (a blinded
repeat of the same case looks like a new study), and reversible only where the secret and the real UIDs are,
on the server (``UidMap.real``). Bulk data links are rewritten with the same map, so metadata, frames and
instances agree and Cornerstone3D or dicomweb-client can follow them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable

from pydicom.dataset import Dataset

from labeling.dicom.store import DicomJson, tag_key

#: The attributes that carry a UID of the study's own objects (SOP class and transfer syntax are kept).
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
_UID_TAGS = frozenset(tag_key(k) for k in UID_KEYWORDS)
_SERIES_UID_TAG = tag_key("SeriesInstanceUID")


def pseudonymous_uid(secret: bytes, scope: str, uid: str) -> str:
    """The UID that ``uid`` has within ``scope`` (``2.25.`` + a 128-bit integer: at most 44 characters)."""
    digest = hmac.new(secret, f"{scope}\x00{uid}".encode(), hashlib.sha256).digest()[:16]
    return f"2.25.{int.from_bytes(digest, 'big')}"


class UidMap:
    """The real ↔ pseudonymous UIDs of one study within one scope."""

    def __init__(
        self, secret: bytes, scope: str, real_uids: Iterable[str], hidden_series: Iterable[str] = ()
    ) -> None:
        self._secret = secret
        self.scope = scope
        self._real: dict[str, str] = {}
        for uid in real_uids:
            self._real[pseudonymous_uid(secret, scope, uid)] = uid
        #: series this scope is not served (a reader-study condition's blinding): their UIDs map to nothing
        self.hidden_series = frozenset(hidden_series)

    @functools.cached_property
    def version(self) -> str:
        """A digest of the real UIDs mapped: another one when the study gained or lost an object (an import)."""
        return hashlib.sha256("\0".join(sorted(self._real.values())).encode()).hexdigest()[:32]

    def shows(self, item: DicomJson) -> bool:
        """Whether a DICOM JSON object (a series or instance) belongs to no hidden series."""
        if not self.hidden_series:
            return True
        entry = item.get(_SERIES_UID_TAG) or {}
        values = entry.get("Value") or []
        return not (values and str(values[0]) in self.hidden_series)

    def pseudo(self, uid: str) -> str:
        return pseudonymous_uid(self._secret, self.scope, uid)

    def real(self, pseudo: str) -> str | None:
        """The real UID behind ``pseudo`` (None when it names nothing of this study)."""
        return self._real.get(pseudo)

    def json(self, item: DicomJson) -> DicomJson:
        """A copy of a DICOM JSON object with its own UIDs (and links naming them) pseudonymous."""
        out: DicomJson = {}
        mapped: dict[str, str] = {}
        for key, entry in item.items():
            if key in _UID_TAGS and entry.get("Value"):
                values = [self.pseudo(str(v)) for v in entry["Value"]]
                mapped.update(zip([str(v) for v in entry["Value"]], values, strict=True))
                out[key] = {**entry, "Value": values}
            elif entry.get("vr") == "SQ":
                out[key] = {"vr": "SQ", "Value": [self.json(child) for child in entry.get("Value") or []]}
            else:
                out[key] = dict(entry)
        for entry in out.values():
            uri = entry.get("BulkDataURI")
            if isinstance(uri, str):
                entry["BulkDataURI"] = "/".join(mapped.get(part, part) for part in uri.split("/"))
        return out

    def dataset(self, dataset: Dataset) -> Dataset:
        """``dataset`` with its own UIDs pseudonymous, in place (file meta included); returns it."""
        for keyword in UID_KEYWORDS:
            if keyword in dataset:
                dataset[keyword].value = self.pseudo(str(dataset[keyword].value))
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.pseudo(str(meta.MediaStorageSOPInstanceUID))
        return dataset
