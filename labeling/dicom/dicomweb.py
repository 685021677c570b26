"""DicomStore over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with dicomweb-client; delete through Orthanc's REST API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from labeling.dicom.errors import (
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreUnavailable,
)
from labeling.dicom.proxy import (
    TRANSIENT_HTTP_STATUSES,
    Served,
    Timeout,
    dicomweb_raw_get,
    frames_accept,
    qido_query,
    stream_get,
)
from labeling.dicom.store import DicomJson, SearchFilters, part10

__all__ = ["TRANSIENT_HTTP_STATUSES", "DicomWebStore", "dicomweb_raw_get"]

_STOW_BATCH = 50


def _http_error(status: int | None, what: str, detail: str) -> DicomStoreError:
    """Map an HTTP status to the named exception a caller can act on."""
    if status == 404:
        return DicomNotFound(f"{what}: not found")
    if status is None or status in TRANSIENT_HTTP_STATUSES:
        return DicomStoreUnavailable(f"{what}: server unavailable (HTTP {status}): {detail}")
    return DicomStoreError(f"{what}: HTTP {status}: {detail}")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn requests' exceptions raised inside the block into DicomStoreError subclasses naming ``what``."""
    try:
        yield
    except requests.HTTPError as exc:
        response = exc.response
        status = response.status_code if response is not None else None
        body = response.text[:300] if response is not None else str(exc)
        raise _http_error(status, what, body) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise DicomStoreUnavailable(f"{what}: DICOM server unreachable: {exc}") from exc
    except requests.RequestException as exc:
        raise DicomStoreError(f"{what}: {exc}") from exc


class _Retried:
    """A DICOMwebClient whose calls are retried on a transient HTTP status only (``TRANSIENT_HTTP_STATUSES``).

    dicomweb-client's own retry (the ``retrying`` package) retries exceptions too: a server that accepts
    connections and never answers would cost ``max_attempts`` read timeouts. A server that cannot be reached
    or does not answer in time is raised at once; one that answers "busy" is asked again, with back-off.
    """

    def __init__(self, client: DICOMwebClient, attempts: int, backoff_s: float = 0.25) -> None:
        self.client, self.attempts, self.backoff_s = client, max(attempts, 1), backoff_s

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return self.retried(getattr(self.client, name))

    def retried(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` asked again, with back-off, while it raises an HTTPError with a transient status."""

        def retried(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, self.attempts + 1):
                try:
                    return call(*args, **kwargs)
                except requests.HTTPError as exc:
                    status = exc.response.status_code if exc.response is not None else None
                    if attempt == self.attempts or status not in TRANSIENT_HTTP_STATUSES:
                        raise
                time.sleep(self.backoff_s * 2**attempt)
            raise AssertionError("unreachable")

        return retried


class DicomWebStore:
    """A DicomStore backed by any DICOMweb server; ``orthanc_url`` (Orthanc's REST root) enables delete.

    ``url`` is the DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``. Requests answered with a transient
    status (408/429/502/503/504) are retried (``max_attempts``, exponential back-off) before
    DicomStoreUnavailable; a server that cannot be reached raises DicomStoreUnavailable at once, and so does one
    that does not answer within ``timeout_s`` (seconds, or (connect, read)), after that one wait.
    Metadata is returned as the server sends it (PixelData as a ``BulkDataURI`` on the server's own URL).
    """

    def __init__(
        self,
        url: str,
        *,
        orthanc_url: str | None = None,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: Timeout = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.url = url.rstrip("/")
        self.orthanc_url = orthanc_url.rstrip("/") if orthanc_url else None
        self._session = session or requests.Session()
        self._timeout_s = timeout_s
        client = DICOMwebClient(
            url=self.url, session=self._session, headers=dict(headers or {}), timeout=timeout_s
        )
        client.set_http_retry_params(retry=False)  # its retry would repeat timeouts too: see _Retried
        # dicomweb-client sends "Host: <name>" without the port, so servers (Orthanc) build BulkDataURI and
        # RetrieveURL values on port 80; give it the port back.
        if client.port not in (80, 443):
            client.host = f"{client.host}:{client.port}"
        self._client: Any = _Retried(client, max_attempts)

    @classmethod
    def for_orthanc(cls, base_url: str, **kwargs: object) -> DicomWebStore:
        """Return a store for an Orthanc at ``base_url`` with its DICOMweb plugin at ``/dicom-web``."""
        base = base_url.rstrip("/")
        return cls(f"{base}/dicom-web", orthanc_url=base, **kwargs)  # type: ignore[arg-type]

    #: QIDO UID-list matching (PS3.18 8.3.4.1) is optional and Orthanc lacks it: assume it is missing
    uid_lists = False

    @property
    def link_root(self) -> str:
        """The root that BulkDataURI and RetrieveURL values of this server's answers start with."""
        return self.url

    @property
    def supports_delete(self) -> bool:
        """Whether delete_study can work (DICOMweb has no portable delete; Orthanc's REST API does)."""
        return self.orthanc_url is not None

    def __repr__(self) -> str:
        return f"DicomWebStore({self.url!r}, orthanc_url={self.orthanc_url!r})"

    # ---------------------------------------------------------------- QIDO-RS

    def _qido(self, path: str, filters: SearchFilters | None, limit: int | None) -> list[DicomJson]:
        """GET a QIDO-RS resource (``studies``, ``studies/{uid}/series``...); its wildcards go unencoded.

        Not dicomweb-client's search_for_*: it percent-encodes ``*`` and ``?`` and Orthanc's wildcard
        matching then finds nothing (issue 16).
        """
        params: dict[str, str | int] = dict(filters or {})
        if limit is not None:
            params["limit"] = limit
        url = f"{self.url}/{path}" + (f"?{qido_query(params)}" if params else "")

        def get() -> list[DicomJson]:
            response = self._session.get(
                url, headers={"Accept": "application/dicom+json"}, timeout=self._timeout_s
            )
            response.raise_for_status()
            if response.status_code == 204 or not response.content:
                return []
            found = response.json()
            return [found] if isinstance(found, dict) else list(found)

        return self._client.retried(get)()

    def search_studies(
        self, filters: SearchFilters | None = None, *, limit: int | None = None
    ) -> list[DicomJson]:
        """Return study-level QIDO results matching ``filters`` (``*`` and ``?`` are wildcards)."""
        with _translated("QIDO search for studies"):
            return self._qido("studies", filters, limit)

    def search_series(
        self,
        study_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return series-level QIDO results, within one study if ``study_uid`` is given."""
        with _translated(f"QIDO search for series of study {study_uid}"):
            path = f"studies/{study_uid}/series" if study_uid else "series"
            return self._qido(path, filters, limit)

    def search_instances(
        self,
        study_uid: str | None = None,
        series_uid: str | None = None,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
    ) -> list[DicomJson]:
        """Return instance-level QIDO results, within one study/series if given."""
        if series_uid and not study_uid:
            raise ValueError("a series UID needs its study UID")
        with _translated(f"QIDO search for instances of series {series_uid}"):
            path = "instances"
            if study_uid:
                path = f"studies/{study_uid}/" + (f"series/{series_uid}/instances" if series_uid else path)
            return self._qido(path, filters, limit)

    # ---------------------------------------------------------------- WADO-RS

    def series_metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """Return the metadata of every instance of a series; DicomNotFound if the series is absent."""
        with _translated(f"metadata of series {series_uid}"):
            result = self._client.retrieve_series_metadata(study_uid, series_uid)
        if not result:
            raise DicomNotFound(f"metadata of series {series_uid}: not found")
        return result

    def study_metadata(self, study_uid: str) -> list[DicomJson]:
        """Return the metadata of every instance of a study; DicomNotFound if the study is absent."""
        with _translated(f"metadata of study {study_uid}"):
            result = self._client.retrieve_study_metadata(study_uid)
        if not result:
            raise DicomNotFound(f"metadata of study {study_uid}: not found")
        return result

    def instance_metadata(self, study_uid: str, series_uid: str, sop_uid: str) -> DicomJson:
        """Return the metadata of one instance."""
        with _translated(f"metadata of instance {sop_uid}"):
            return self._client.retrieve_instance_metadata(study_uid, series_uid, sop_uid)

    def instance(self, study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
        """Return one instance (Part 10, stored transfer syntax) as a pydicom Dataset."""
        with _translated(f"instance {sop_uid}"):
            return self._client.retrieve_instance(
                study_uid, series_uid, sop_uid, media_types=(("application/dicom", "*"),)
            )

    def frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int]
    ) -> list[bytes]:
        """Return the raw bytes of the given 1-based frames, in the stored transfer syntax where the server allows."""
        if not frame_numbers or min(frame_numbers) < 1:
            raise ValueError("frame numbers are 1-based and at least one is needed")
        with _translated(f"frames {list(frame_numbers)} of instance {sop_uid}"):
            return self._client.retrieve_instance_frames(
                study_uid,
                series_uid,
                sop_uid,
                frame_numbers=list(frame_numbers),
                media_types=(("application/octet-stream", "*"),),
            )

    def rendered(
        self, study_uid: str, series_uid: str, sop_uid: str, *, media_type: str = "image/png"
    ) -> bytes:
        """Return one instance rendered by the server as ``media_type`` (PNG by default)."""
        with _translated(f"rendered instance {sop_uid}"):
            return self._client.retrieve_instance_rendered(
                study_uid, series_uid, sop_uid, media_types=(media_type,)
            )

    # ---------------------------------------------------------------- served as they come (the proxy)

    def _stream(self, path: str, accept: str, query: str | None = None) -> Served:
        return stream_get(
            self._session, self.url, path, accept=accept, query=query, timeout_s=self._timeout_s
        )

    def serve_frames(
        self, study_uid: str, series_uid: str, sop_uid: str, frame_numbers: Sequence[int], accept: str
    ) -> Served:
        """Stream the server's multipart answer for the frames (a wildcard Accept asks for the stored syntax)."""
        frames = ",".join(str(n) for n in frame_numbers)
        path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}"
        return self._stream(path, frames_accept(accept))

    def serve_rendered(
        self,
        study_uid: str,
        series_uid: str,
        sop_uid: str,
        frame_numbers: Sequence[int] | None,
        accept: str,
        query: str | None = None,
    ) -> Served:
        """Stream the server's rendering of an instance or frames (its media types, its query parameters)."""
        path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        path += (
            f"/frames/{','.join(str(n) for n in frame_numbers)}/rendered" if frame_numbers else "/rendered"
        )
        return self._stream(path, accept, query)

    def serve_instances(self, study_uid: str, series_uid: str | None, sop_uid: str | None) -> Served:
        """Stream a study, series or instance as multipart/related; type="application/dicom" (stored syntax)."""
        path = f"studies/{study_uid}" + (f"/series/{series_uid}" if series_uid else "")
        path += f"/instances/{sop_uid}" if series_uid and sop_uid else ""
        return self._stream(path, 'multipart/related; type="application/dicom"; transfer-syntax=*')

    # ---------------------------------------------------------------- STOW-RS and delete

    def store(self, datasets: Sequence[Dataset]) -> list[str]:
        """STOW instances in batches; return their SOPInstanceUIDs; DicomStoreError lists any refused ones."""
        stored: list[str] = []
        for start in range(0, len(datasets), _STOW_BATCH):
            try:
                batch = [part10(ds) for ds in datasets[start : start + _STOW_BATCH]]
            except ValueError as exc:
                raise DicomStoreError(f"cannot store: {exc}") from exc
            with _translated(f"STOW of {len(batch)} instances"):
                response = self._client.store_instances(batch)
            failed = response.get("FailedSOPSequence") or []
            if failed:
                details = ", ".join(
                    f"{item.get('ReferencedSOPInstanceUID', '?')} (reason {item.get('FailureReason', '?')})"
                    for item in failed
                )
                raise DicomStoreError(f"STOW refused {len(failed)} of {len(batch)} instances: {details}")
            stored.extend(str(ds.SOPInstanceUID) for ds in batch)
        return stored

    def delete_study(self, study_uid: str) -> None:
        """Delete a study through Orthanc's REST API (``/tools/lookup`` then ``DELETE /studies/{id}``)."""
        if self.orthanc_url is None:
            raise DicomOperationUnsupported(
                f"delete of study {study_uid}: DICOMweb has no delete; give DicomWebStore an orthanc_url"
            )
        what = f"delete of study {study_uid}"
        with _translated(what):
            lookup = self._session.post(
                f"{self.orthanc_url}/tools/lookup", data=study_uid, timeout=self._timeout_s
            )
            lookup.raise_for_status()
            ids = [hit["ID"] for hit in lookup.json() if hit.get("Type") == "Study"]
            if not ids:
                raise DicomNotFound(f"{what}: not found")
            for orthanc_id in ids:
                self._session.delete(
                    f"{self.orthanc_url}/studies/{orthanc_id}", timeout=self._timeout_s
                ).raise_for_status()
