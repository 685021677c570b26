"""Bring the local DICOM store's index in line with its folder (files dropped in or removed by hand)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from labeling.dicom import LocalFolderStore
from labeling.services.ingest import configured_store


class Command(BaseCommand):
    help = (
        "Reindex the local DICOM store (DICOM_FOLDER): stat every file, read the headers of new or changed "
        "files, forget removed ones. Imports keep the index up to date by themselves."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        store = configured_store()
        if not isinstance(store, LocalFolderStore):
            raise CommandError("the configured store is a DICOMweb server (DICOMWEB_URL), not a local folder")
        started = time.perf_counter()
        counts = store.reindex()
        self.stdout.write(
            f"{store.root}: {counts['files']} files, {counts['read']} read, {counts['removed']} removed "
            f"in {time.perf_counter() - started:.1f} s"
        )
