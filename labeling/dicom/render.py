"""Pixel helpers for the local store: one frame's raw bytes (from a dataset, or read at its offset in a file),
and a minimal greyscale/RGB PNG rendering."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame

from labeling.dicom.errors import DicomNotFound, DicomStoreError

_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def frame_count(dataset: Dataset) -> int:
    """Return NumberOfFrames (1 when absent)."""
    return int(dataset.get("NumberOfFrames", 1) or 1)


def frame_bytes(dataset: Dataset, frame_number: int) -> bytes:
    """Return the stored bytes of 1-based ``frame_number``: raw pixels, or the compressed fragment(s).

    Raises DicomNotFound for a frame outside 1..NumberOfFrames, DicomStoreError when there are no pixels.
    """
    if "PixelData" not in dataset:
        raise DicomStoreError(f"instance {dataset.get('SOPInstanceUID', '?')} has no PixelData")
    n_frames = frame_count(dataset)
    if not 1 <= frame_number <= n_frames:
        raise DicomNotFound(f"frame {frame_number} of instance {dataset.SOPInstanceUID}: it has {n_frames}")
    pixels: bytes = dataset.PixelData
    syntax = dataset.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in dataset.file_meta else None
    if syntax is not None and syntax.is_compressed:
        return get_frame(pixels, frame_number - 1, number_of_frames=n_frames)
    size = _frame_size(dataset)
    chunk = pixels[(frame_number - 1) * size : frame_number * size]
    if len(chunk) != size:
        raise DicomStoreError(f"pixel data of instance {dataset.SOPInstanceUID} is truncated")
    return chunk


def _frame_size(dataset: Dataset) -> int:
    """Bytes of one uncompressed frame."""
    bits = int(dataset.BitsAllocated)
    if bits % 8:
        raise DicomStoreError(f"frames of {bits}-bit packed pixel data are not supported")
    return int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1)) * bits // 8


def read_frames(path: Path, frame_numbers: Sequence[int]) -> tuple[Dataset, list[bytes]] | None:
    """The header and the stored bytes of 1-based frames of a Part 10 file, each read at its offset.

    A multi-frame instance's frames are asked for one by one (a viewer scrolling); reading the whole pixel
    data for each (pydicom's ``dcmread``) costs its size in memory and time per frame. Here only the header
    and the frame's own bytes are read (an encapsulated frame through the Basic or Extended Offset Table;
    without one, the fragments before it are skipped over). None when the file needs a full read instead: a
    big-endian or deflated syntax, or no PixelData where the header ends. Same errors as ``frame_bytes``.
    """
    with path.open("rb") as file:
        header = dcmread(file, stop_before_pixels=True)
        syntax = header.file_meta.get("TransferSyntaxUID")
        if syntax is None or not syntax.is_little_endian or syntax.is_deflated:
            return None
        if file.read(4) != _PIXEL_DATA_TAG:
            return None
        if not syntax.is_implicit_VR:
            file.read(4)  # VR (OB/OW) and 2 reserved bytes
        (length,) = struct.unpack("<I", file.read(4))
        start = file.tell()
        n_frames = frame_count(header)
        for number in frame_numbers:
            if not 1 <= number <= n_frames:
                raise DicomNotFound(f"frame {number} of instance {header.SOPInstanceUID}: it has {n_frames}")
        frames: list[bytes] = []
        if syntax.is_compressed:
            offsets = None
            if "ExtendedOffsetTable" in header and "ExtendedOffsetTableLengths" in header:
                offsets = (header.ExtendedOffsetTable, header.ExtendedOffsetTableLengths)
            for number in frame_numbers:
                file.seek(start)
                try:
                    frames.append(
                        get_frame(file, number - 1, number_of_frames=n_frames, extended_offsets=offsets)
                    )
                except ValueError as exc:
                    raise DicomStoreError(f"pixel data of {header.SOPInstanceUID}: {exc}") from exc
            return header, frames
        size = _frame_size(header)
        for number in frame_numbers:
            file.seek(start + (number - 1) * size)
            chunk = file.read(size)
            if len(chunk) != size or number * size > length:
                raise DicomStoreError(f"pixel data of instance {header.SOPInstanceUID} is truncated")
            frames.append(chunk)
        return header, frames


def render_png(dataset: Dataset) -> bytes:
    """Render the first frame as an 8-bit PNG: modality rescale, then the stored window or min-max."""
    try:
        array = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types when a decoder is missing or data is bad
        raise DicomStoreError(f"cannot decode pixels of {dataset.get('SOPInstanceUID', '?')}: {exc}") from exc
    colour = int(dataset.get("SamplesPerPixel", 1)) == 3
    if frame_count(dataset) > 1:
        array = array[0]
    values = array.astype(np.float64) * float(dataset.get("RescaleSlope", 1) or 1) + float(
        dataset.get("RescaleIntercept", 0) or 0
    )
    if colour:
        low, high = 0.0, float(2 ** int(dataset.BitsStored) - 1)
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        center, width = (_first(dataset.WindowCenter), _first(dataset.WindowWidth))
        low, high = center - width / 2, center + width / 2
    else:
        low, high = float(values.min()), float(values.max())
    scaled = np.clip((values - low) / max(high - low, 1e-9), 0.0, 1.0) * 255.0
    image = np.rint(scaled).astype(np.uint8)
    if not colour and dataset.get("PhotometricInterpretation") == "MONOCHROME1":
        image = 255 - image
    return encode_png(image)


def _first(value: object) -> float:
    """Return the first of a possibly multi-valued DS (pydicom MultiValue is a Sequence)."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return float(value[0])
    return float(value)  # type: ignore[arg-type]


def encode_png(image: np.ndarray) -> bytes:
    """Encode a uint8 array of shape (rows, columns) or (rows, columns, 3) as PNG (no filtering)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError("encode_png takes a uint8 (rows, columns[, 3]) array")
    rows, columns = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    raw = np.ascontiguousarray(image).reshape(rows, -1)
    scanlines = np.concatenate([np.zeros((rows, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", columns, rows, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines, 6))
        + chunk(b"IEND", b"")
    )
