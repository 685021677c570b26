"""Files written whole or not at all: a temporary file in the same folder, then ``os.replace``.

A process killed mid-write, or a disk that fills up, leaves the previous file (or none) and no partial one:
the temporary file is removed on any failure, and a full disk (ENOSPC, EDQUOT) is raised as ``DiskFull``,
whose message names the file and what to do.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The errors of a disk (or a quota) with no space left.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(OSError):
    """No space left on the device of a file being written; nothing of that file was kept."""


def write_atomically(
    path: str | os.PathLike[str], write: Callable[[str], Any], *, what: str = "file"
) -> None:
    """Call ``write(temporary_path)``, then move the temporary file over ``path`` atomically.

    ``what`` names the file in the DiskFull message (e.g. "checkpoint file"). On any failure the temporary
    file is removed and the exception raised; a full disk becomes DiskFull.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        if exc.errno in NO_SPACE and not isinstance(exc, DiskFull):
            raise DiskFull(
                exc.errno,
                f"no space left on the device: the {what} {target.name} could not be written in {target.parent}; "
                "nothing partial was kept, free disk space and try again",
            ) from exc
        raise
