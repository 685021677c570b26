"""Benchmark: a fresh process's first request on the local folder store (what a new web worker pays).

Run: ``.venv/bin/python -m tests.bench.bench_local_index [--studies 48] [--slices 16] [--folder PATH]``. No
database, no Django. It writes ``--studies`` MR studies (T1 and STIR, ``--slices`` slices of 256x256 each) to a
temporary local store through ``LocalFolderStore.store`` (as an import does), or uses the store at ``--folder``
(e.g. ``var/dicom`` after ``make demo``); then, in ``--runs`` fresh Python processes, it times what a viewer's
first request asks of a new web worker: the series of one study (QIDO) and one series' metadata. Before the
shared index (issue 15, finding 12), each new process walked the folder and read every header of the store on
its first search.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from labeling.dicom import LocalFolderStore
from labeling.dicom.store import json_value
store = LocalFolderStore(sys.argv[1])
t1 = time.perf_counter()
series = store.search_series(sys.argv[2])
t2 = time.perf_counter()
metadata = store.series_metadata(sys.argv[2], json_value(series[0], "SeriesInstanceUID"))
t3 = time.perf_counter()
print(json.dumps({"search_ms": (t2 - t1) * 1e3, "metadata_ms": (t3 - t2) * 1e3, "n": len(metadata)}))
"""


def write_store(root: Path, studies: int, slices: int) -> list[str]:
    from pydicom.uid import generate_uid

    from labeling.dicom import LocalFolderStore
    from tests.labeling.dicom.dicom_factory import make_series

    store = LocalFolderStore(root)
    uids = []
    for k in range(studies):
        study_uid, frame = generate_uid(), generate_uid()
        for i, description in enumerate(("T1", "STIR")):
            series = make_series(
                n_slices=slices,
                rows=256,
                columns=256,
                description=description,
                study_uid=study_uid,
                frame_of_reference_uid=frame,
                patient_id=f"PHANTOM-{k:04d}",
                seed=2 * k + i,
            )
            store.store(series)
        uids.append(study_uid)
    return uids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=48)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes timed")
    parser.add_argument("--folder", type=Path, default=None, help="an existing local store to measure")
    args = parser.parse_args()

    if args.folder is None:
        root = Path(tempfile.mkdtemp(prefix="concord-bench-index-")) / "store"
        started = time.perf_counter()
        study_uids = write_store(root, args.studies, args.slices)
        print(
            f"wrote {args.studies} studies x 2 series x {args.slices} slices in {time.perf_counter() - started:.1f} s"
        )
    else:
        from labeling.dicom import LocalFolderStore
        from labeling.dicom.store import json_value

        root = args.folder.resolve()
        study_uids = [json_value(s, "StudyInstanceUID") for s in LocalFolderStore(root).search_studies()]
    files = sum(len(names) for _, _, names in os.walk(root))
    print(f"store {root}: {len(study_uids)} studies, {files} files; load average {os.getloadavg()[0]:.1f}")
    results = []
    for run in range(args.runs):
        study = study_uids[run % len(study_uids)]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), study], check=True, capture_output=True, text=True
        )
        results.append(json.loads(out.stdout))
    for key in ("search_ms", "metadata_ms"):
        values = [r[key] for r in results]
        print(
            f"first {key[:-3]:<8} in a fresh process: median {statistics.median(values):8.1f} ms, max {max(values):8.1f} ms"
        )


if __name__ == "__main__":
    main()
