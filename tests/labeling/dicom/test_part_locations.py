"""labeling.dicom.proxy.without_part_locations: frame parts lose the upstream URL, and nothing else."""

from __future__ import annotations

from labeling.dicom.proxy import without_part_locations

STORED = "1.2.826.0.1.3680043.8.498.1"
CONTENT_TYPE = 'multipart/related; type="application/octet-stream"; transfer-syntax=*; boundary=b0und'


def part(data: bytes, location: bool = True) -> bytes:
    head = b"Content-Type: application/octet-stream\r\n"
    if location:
        head += f"Content-Location: http://orthanc:8042/dicom-web/studies/{STORED}/frames/1\r\n".encode()
    return (
        b"--b0und\r\n" + head + b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n"
    )


def test_content_location_headers_go_and_the_pixel_data_stays_byte_for_byte():
    pixels = [bytes(range(256)) * 4, b"Content-Location: inside the pixels\r\n\r\n\x00\xff"]
    body = b"".join(part(p) for p in pixels) + b"--b0und--\r\n"
    cleaned = without_part_locations(body, CONTENT_TYPE)
    assert STORED.encode() not in cleaned and b"orthanc" not in cleaned
    expected = b"".join(part(p, location=False) for p in pixels) + b"--b0und--\r\n"
    assert cleaned == expected


def test_a_body_without_locations_or_without_a_boundary_is_unchanged():
    body = part(b"\x01\x02", location=False) + b"--b0und--\r\n"
    assert without_part_locations(body, CONTENT_TYPE) == body
    assert without_part_locations(b"raw", "application/octet-stream") == b"raw"
    quoted = CONTENT_TYPE.replace("boundary=b0und", 'boundary="b0und"')
    assert b"Content-Location" not in without_part_locations(part(b"x") + b"--b0und--\r\n", quoted)
