"""The browser while the image server (Orthanc) is down — here a closed port as the web's DICOMweb server: the
reading view says "Image server unavailable" instead of showing a black viewport, and the form stays usable."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Site
from tests.labeling.processes import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]  # seeded and flushed once per module (conftest.site)
SITE_ENV = {"DICOMWEB_URL": f"http://127.0.0.1:{free_port()}/dicom-web"}  # nothing listens there


def test_a_reader_sees_image_server_unavailable_instead_of_a_black_viewport(
    site: Site, new_page: Any
) -> None:
    page = new_page("reader1")
    page.goto(f"{site.base}/read/{site.data.assignments['mri:reader1']}")
    notice = page.get_by_role("alert").filter(has_text="Image server unavailable")
    notice.wait_for()
    assert "Your grades are kept" in notice.inner_text()
    assert page.locator("[data-first-image-ms]").count() == 0  # no image was ever drawn
    assert page.get_by_role("button", name="Submit reading").is_visible()
    assert page.errors == []  # type: ignore[attr-defined]
