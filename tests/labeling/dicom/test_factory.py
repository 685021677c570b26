"""store_open picks the configured store."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling.dicom import DicomWebStore, LocalFolderStore, store_open


def test_a_dicomweb_url_selects_the_dicomweb_store() -> None:
    store = store_open(
        dicomweb_url="http://pacs:8042/dicom-web/", folder="/unused", orthanc_url="http://pacs:8042"
    )
    assert isinstance(store, DicomWebStore)
    assert (store.url, store.supports_delete) == ("http://pacs:8042/dicom-web", True)


def test_an_empty_url_selects_the_local_folder(tmp_path: Path) -> None:
    store = store_open(dicomweb_url="", folder=tmp_path / "dicom")
    assert isinstance(store, LocalFolderStore)
    assert store.root == (tmp_path / "dicom").resolve()


def test_no_configuration_is_an_error() -> None:
    with pytest.raises(ValueError, match="configure a DICOM store"):
        store_open()
