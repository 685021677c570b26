"""The DICOMweb proxy's frame cache on its own (no Django): what it keeps, for how long, and how it fails."""

from __future__ import annotations

import logging
import time

import pytest

from labeling.dicom import frame_cache
from labeling.dicom.frame_cache import FrameCache, frame_key

MULTIPART = 'multipart/related; type="application/octet-stream"; boundary=b'
ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def key(instance: str = "5.6", **kwargs) -> str:
    args = {"server": "http://pacs/dicom-web", "frames": "1", "accept": ACCEPT, "located": False, **kwargs}
    return frame_key(
        args.pop("server"), "1.2", "3.4", instance, args.pop("frames"), args.pop("accept"), **args
    )


def test_a_kept_frame_comes_back_byte_for_byte_with_its_media_type(tmp_path):
    cache = FrameCache(tmp_path / "frames", size_limit=64 << 20, ttl_s=60)
    body = bytes(range(256)) * 512
    assert cache.open(key()) is None
    assert cache.put(key(), body, MULTIPART)
    handle, content_type = cache.open(key())
    with handle:
        assert handle.read() == body and content_type == MULTIPART
    # another process (a second FrameCache on the same folder: another gunicorn worker) finds it too
    handle, _ = FrameCache(tmp_path / "frames", size_limit=64 << 20, ttl_s=60).open(key())
    with handle:
        assert handle.read() == body


def test_the_key_tells_apart_what_may_differ_in_the_answer():
    keys = {
        key(),
        key(instance="5.7"),
        key(frames="1,2"),
        key(accept='multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'),
        key(located=True),  # the image server's own part locations: never for a reader's assignment
        key(server="http://other/dicom-web"),
    }
    assert len(keys) == 6


def test_the_cache_stays_within_its_size_dropping_the_oldest_first(tmp_path):
    cache = FrameCache(tmp_path / "frames", size_limit=2 << 20, ttl_s=60)  # 2 MiB
    frame = b"x" * (128 << 10)
    for n in range(40):  # 5 MiB in all
        assert cache.put(key(f"5.{n}"), frame, MULTIPART)
    kept = [n for n in range(40) if cache.open(key(f"5.{n}")) is not None]
    on_disk = sum(p.stat().st_size for p in (tmp_path / "frames").rglob("*.val"))
    assert on_disk <= 2 << 20 and kept[-1] == 39 and 0 not in kept
    assert kept == list(range(kept[0], 40))  # least recently stored first out


def test_an_entry_is_never_served_after_its_lifetime(tmp_path):
    cache = FrameCache(tmp_path / "frames", size_limit=64 << 20, ttl_s=0.2)
    cache.put(key(), b"frame", MULTIPART)
    assert cache.open(key()) is not None
    time.sleep(0.3)
    assert cache.open(key()) is None


def test_a_cache_that_cannot_be_written_logs_once_and_is_tried_again_later(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cache = FrameCache(blocker / "frames", size_limit=64 << 20, ttl_s=60, retry_after_s=0.3)
    with caplog.at_level(logging.WARNING, logger="labeling.dicom.frame_cache"):
        assert cache.open(key()) is None
        for _ in range(100):  # a viewer's burst of frames: neither tried nor logged again
            assert cache.put(key(), b"frame", MULTIPART) is False
            assert cache.open(key()) is None
    assert len(caplog.records) == 1 and "unreadable" in caplog.text and "not tried again" in caplog.text
    blocker.unlink()  # the folder is fixed
    assert cache.put(key(), b"frame", MULTIPART) is False  # within the back-off: not tried yet
    time.sleep(0.35)
    assert cache.put(key(), b"frame", MULTIPART)
    handle, _ = cache.open(key())
    with handle:
        assert handle.read() == b"frame"


@pytest.mark.parametrize("size_limit, expected", [(64 << 20, 4 << 20), (1 << 30, 16 << 20)])
def test_an_entry_is_kept_only_up_to_a_sixteenth_of_the_cache_and_16_mib(tmp_path, size_limit, expected):
    assert FrameCache(tmp_path, size_limit=size_limit, ttl_s=60).max_entry_bytes == expected


def test_the_folder_is_made_for_this_user_alone(tmp_path):
    cache = FrameCache(tmp_path / "var" / "frames", size_limit=64 << 20, ttl_s=60)
    assert cache.put(key(), b"frame", MULTIPART)
    assert (tmp_path / "var" / "frames").stat().st_mode & 0o777 == 0o700


def test_a_folder_open_to_other_users_is_closed_to_them_before_use(tmp_path, caplog):
    folder = tmp_path / "frames"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # whatever the umask
    with caplog.at_level(logging.WARNING, logger="labeling.dicom.frame_cache"):
        assert FrameCache(folder, size_limit=64 << 20, ttl_s=60).put(key(), b"frame", MULTIPART)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert "open to other users (mode 777); now 700" in caplog.text


def test_a_folder_of_another_user_is_not_used(tmp_path, caplog, monkeypatch):
    folder = tmp_path / "frames"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(frame_cache.os, "geteuid", lambda: folder.stat().st_uid + 1)  # as if another's
    cache = FrameCache(folder, size_limit=64 << 20, ttl_s=60)
    with caplog.at_level(logging.WARNING, logger="labeling.dicom.frame_cache"):
        assert cache.put(key(), b"frame", MULTIPART) is False
        assert cache.open(key()) is None
    assert "another user could change the frames" in caplog.text
    assert list(folder.iterdir()) == []  # nothing written there
