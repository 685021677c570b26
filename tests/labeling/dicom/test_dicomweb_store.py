"""DicomWebStore specifics: error mapping, optional delete, and the raw streaming GET for the proxy."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydicom.dataset import Dataset

from labeling.dicom import (
    DicomNotFound,
    DicomOperationUnsupported,
    DicomStoreError,
    DicomStoreUnavailable,
    DicomWebStore,
    dicomweb_raw_get,
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_raises_the_retryable_error() -> None:
    store = DicomWebStore(f"http://127.0.0.1:{_closed_port()}/dicom-web", max_attempts=1, timeout_s=2)
    with pytest.raises(DicomStoreUnavailable):
        store.search_studies()
    with pytest.raises(DicomStoreUnavailable):
        dicomweb_raw_get(store.url, "studies", timeout_s=2)


def test_delete_needs_the_orthanc_rest_url(orthanc_url: str) -> None:
    store = DicomWebStore(f"{orthanc_url}/dicom-web")
    assert not store.supports_delete
    with pytest.raises(DicomOperationUnsupported):
        store.delete_study("1.2.3")


def test_bulk_data_uris_point_at_the_server_port(
    dicomweb_store: DicomWebStore, mr_series: list[Dataset]
) -> None:
    ds = mr_series[0]
    dicomweb_store.store(mr_series[:1])
    metadata = dicomweb_store.instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert metadata["7FE00010"]["BulkDataURI"].startswith(dicomweb_store.url + "/")


def test_raw_get_streams_the_server_answer(dicomweb_store: DicomWebStore, mr_series: list[Dataset]) -> None:
    ds = mr_series[0]
    dicomweb_store.store(mr_series)
    path = f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/metadata"

    with dicomweb_raw_get(dicomweb_store.url, path, accept="application/dicom+json") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/dicom+json")
        assert len(response.json()) == 3
    frame_path = f"{path.removesuffix('/metadata')}/instances/{ds.SOPInstanceUID}/frames/1"
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    with dicomweb_raw_get(dicomweb_store.url, frame_path, accept=accept) as response:
        body = b"".join(response.iter_content(4096))
    assert response.status_code == 200
    assert ds.PixelData in body
    with dicomweb_raw_get(dicomweb_store.url, "studies", query={"PatientID": "PHANTOM-NOBODY"}) as response:
        assert response.status_code in (200, 204)


@pytest.mark.parametrize("path", ["../system", "studies/../../tools", "http://evil/x", "studies\\..\\x"])
def test_raw_get_refuses_paths_outside_the_dicomweb_root(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        dicomweb_raw_get("http://127.0.0.1:1/dicom-web", path)


@pytest.fixture
def http_status_server() -> Iterator[Callable[[int], str]]:
    """A loopback HTTP server answering every request with the status that the test sets."""
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def url_answering(status: int) -> str:
        state["status"] = status
        return f"http://127.0.0.1:{server.server_address[1]}/dicom-web"

    yield url_answering
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, DicomStoreUnavailable),
        (429, DicomStoreUnavailable),
        (404, DicomNotFound),
        (500, DicomStoreError),
    ],
)
def test_http_failures_map_to_named_errors(
    http_status_server: Callable[[int], str], status: int, error: type[Exception]
) -> None:
    store = DicomWebStore(http_status_server(status), max_attempts=1)
    with pytest.raises(error) as raised:
        store.series_metadata("1.2.3", "1.2.4")
    assert type(raised.value) is error
