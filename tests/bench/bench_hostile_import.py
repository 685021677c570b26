"""Benchmark: peak memory (RSS) of each hostile import, next to a valid study's, with what Concord answered.

Run: ``.venv/bin/python -m tests.bench.bench_hostile_import [--bomb-gib 1] [--slices 24]``. Needs PostgreSQL (a
throw-away test database). The inputs are written to a temporary folder first; each is then imported in a
fresh process (the same Django stack, settings ``config.settings_test``, a local store): archives through the
upload path (``import_upload_prepare``; the valid one then through its job, ``import_job_run``), DICOM files
through ``import_paths``. Each process reports its peak RSS (``VmHWM``), the RSS it had before the import
(Django loaded, the project created), the time the import took and the first words of the answer. The hostile
inputs of the test suite (tests/labeling/test_hostile_imports.py) at full size:

- ``zip_slip``: a member ``../../evil.dcm``; ``symlink``: a member that is a symbolic link to /etc/passwd;
- ``bomb_ratio``: one member of ``--bomb-gib`` GiB of zeros (about 1 MiB compressed);
- ``bomb_total``: 600 members of 15 MiB of zeros each (under the ratio floor), 8.8 GiB unpacked in all;
- ``nested``: a zip holding the ratio bomb as ``inner.zip``; ``tiny_10000``: 10,000 files of 4 bytes;
- ``absurd_raw`` / ``absurd_rle``: 65535 x 65535 pixels x 100,000 frames, raw and RLE-encapsulated;
- ``unknown_syntax`` / ``jpeg_lossless``: a private transfer syntax, and one no installed decoder reads;
- ``cut_256mib``: a file of 256 MiB of pixel data cut 1 KiB short (validation must not read the pixels);
- ``sop_replaced``: a valid study imported, then again with one file's pixels changed under the same UIDs.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = "tests.bench.bench_hostile_import"


# --- inputs (no Django) ----------------------------------------------------------------------------------


def _mri_study(folder: Path, slices: int, rows: int = 256) -> list[Path]:
    from tests.labeling.dicom.dicom_factory import write_mri_study

    return write_mri_study(folder, n_slices=slices, size=rows)[1]


def _zip_of(target: Path, files: dict[str, Path | bytes]) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files.items():
            if isinstance(content, Path):
                bundle.write(content, name)
            else:
                bundle.writestr(name, content)
    return target


def _zeros_member(bundle: zipfile.ZipFile, name: str, n_bytes: int) -> None:
    chunk = bytes(1024**2)
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with bundle.open(info, "w", force_zip64=True) as out:
        for start in range(0, n_bytes, len(chunk)):
            out.write(chunk[: min(len(chunk), n_bytes - start)])


def _one_dicom(target: Path, change: Any, rows: int = 16) -> Path:
    from tests.labeling.dicom.dicom_factory import make_series

    ds = make_series(n_slices=1, rows=rows, columns=rows)[0]
    change(ds)
    ds.save_as(target, implicit_vr=False, little_endian=True, enforce_file_format=True)
    return target


def _encapsulated(syntax: str) -> Any:
    from pydicom.encaps import encapsulate

    def change(ds: Any) -> None:
        ds.file_meta.TransferSyntaxUID = syntax
        ds.PixelData = encapsulate([bytes(64)])
        ds["PixelData"].VR = "OB"

    return change


def make_inputs(folder: Path, *, bomb_gib: float, slices: int) -> dict[str, tuple[str, Path]]:
    """Kind -> ("upload" | "files" | "replace", path): the inputs, written under ``folder``."""
    from pydicom.uid import JPEGLossless, RLELossless

    inputs: dict[str, tuple[str, Path]] = {}
    study = _mri_study(folder / "study", slices)
    inputs["valid_study"] = (
        "upload",
        _zip_of(folder / "valid.zip", {p.name + p.parent.name: p for p in study}),
    )
    inputs["zip_slip"] = ("upload", _zip_of(folder / "slip.zip", {"../../evil.dcm": b"x"}))
    with zipfile.ZipFile(folder / "symlink.zip", "w") as bundle:
        link = zipfile.ZipInfo("series/evil.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    inputs["symlink"] = ("upload", folder / "symlink.zip")
    with zipfile.ZipFile(folder / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        _zeros_member(bundle, "zeros.dcm", int(bomb_gib * 1024**3))
    inputs["bomb_ratio"] = ("upload", folder / "bomb.zip")
    with zipfile.ZipFile(folder / "total.zip", "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for i in range(600):
            _zeros_member(bundle, f"part-{i:03d}.dcm", 15 * 1024**2)
    inputs["bomb_total"] = ("upload", folder / "total.zip")
    inputs["nested"] = ("upload", _zip_of(folder / "nested.zip", {"inner.zip": folder / "bomb.zip"}))
    inputs["tiny_10000"] = (
        "upload",
        _zip_of(folder / "tiny.zip", {f"t/{i:05d}.dcm": b"DICM" for i in range(10_000)}),
    )

    def absurd(ds: Any) -> None:
        ds.Rows, ds.Columns, ds.NumberOfFrames = 65535, 65535, 100_000

    def absurd_rle(ds: Any) -> None:
        absurd(ds)
        _encapsulated(RLELossless)(ds)

    def unknown(ds: Any) -> None:
        ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.10.1337.99"

    inputs["absurd_raw"] = ("files", _one_dicom(folder / "absurd_raw.dcm", absurd))
    inputs["absurd_rle"] = ("files", _one_dicom(folder / "absurd_rle.dcm", absurd_rle))
    inputs["unknown_syntax"] = ("files", _one_dicom(folder / "unknown.dcm", unknown))
    inputs["jpeg_lossless"] = ("files", _one_dicom(folder / "jpegls.dcm", _encapsulated(JPEGLossless)))

    def cut_pixels(ds: Any) -> None:  # 8192 x 8192 pixels x 2 frames x 16 bit: 256 MiB
        ds.Rows, ds.Columns, ds.NumberOfFrames = 8192, 8192, 2
        ds.PixelData = bytes(256 * 1024**2)

    cut = _one_dicom(folder / "cut.dcm", cut_pixels)
    with cut.open("r+b") as handle:
        handle.truncate(cut.stat().st_size - 1024)
    inputs["cut_256mib"] = ("files", cut)
    inputs["sop_replaced"] = ("replace", folder / "study")
    return inputs


# --- one import, in a fresh process ---------------------------------------------------------------------


def _status_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, MiB. Not ru_maxrss: Linux carries that across exec from
    the forked parent, so a child would report the benchmark's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(kind: str, mode: str, path: Path, store: Path, var: Path) -> None:
    import django

    django.setup()
    from django.conf import settings

    settings.DICOM_FOLDER, settings.VAR_DIR, settings.DICOMWEB_URL = store, var, ""
    settings.DEIDENTIFY_ON_IMPORT = False
    from pydicom import dcmread

    from labeling.exceptions import InvalidInput
    from labeling.services.ingest import dicom_files_under, import_job_run, import_paths
    from labeling.services.uploads import import_upload_prepare
    from tests.labeling.factories import ProjectFactory, UserFactory

    project, actor = ProjectFactory(name=f"bench {kind}"), UserFactory(username=f"bench-{kind}")
    paths = dicom_files_under(path) if path.is_dir() else [path]
    if mode == "replace":  # the study as it was first imported, not counted
        import_paths(actor=None, paths=paths, project=project)
        changed = dcmread(paths[0])
        changed.PixelData = bytes(len(changed.PixelData))
        changed.save_as(paths[0], enforce_file_format=True)
    before, start = _status_mib("VmRSS"), time.perf_counter()
    if mode == "upload":
        try:
            with path.open("rb") as stream:
                job = import_upload_prepare(actor=actor, project=project, files=[(path.name, stream)])
            job = import_job_run(job_id=job.pk)
            answer = (
                f"{job.status}: imported {len(job.report['imported'])} study, {len(job.problems)} problems"
            )
        except InvalidInput as exc:
            answer = f"400 {exc.message}"
    else:
        report = import_paths(actor=None, paths=paths, project=project)
        problems = [p["reason"] for p in report.problems]
        answer = f"imported {len(report.imported)}, problem: {problems[0] if problems else '-'}"
    seconds = time.perf_counter() - start
    print(json.dumps({"peak": _status_mib("VmHWM"), "before": before, "seconds": seconds, "answer": answer}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bomb-gib", type=float, default=1.0, help="unpacked size of the ratio bomb")
    parser.add_argument("--slices", type=int, default=24, help="slices per series of the valid study")
    parser.add_argument("--child", nargs=5, metavar=("KIND", "MODE", "PATH", "STORE", "VAR"))
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("CONCORD_TEST_BROKER_URL", "memory://")
    if args.child:
        kind, mode, path, store, var = args.child
        child(kind, mode, Path(path), Path(store), Path(var))
        return

    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord_hostilebench")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    work = Path(tempfile.mkdtemp(prefix="concord-bench-hostile-"))
    started = time.perf_counter()
    inputs = make_inputs(work / "in", bomb_gib=args.bomb_gib, slices=args.slices)
    print(f"inputs written to {work / 'in'} in {time.perf_counter() - started:.0f} s")
    config = setup_databases(verbosity=0, interactive=False)
    env = dict(os.environ)
    env["DATABASE_URL"] = env["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    rows = []
    try:
        for kind, (mode, path) in inputs.items():
            size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.rglob("*.dcm")))
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    HERE,
                    "--child",
                    kind,
                    mode,
                    str(path),
                    str(work / kind / "store"),
                    str(work / kind / "var"),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                rows.append(
                    (kind, size, float("nan"), float("nan"), float("nan"), done.stderr.strip()[-200:])
                )
                continue
            result = json.loads(lines[-1])
            rows.append((kind, size, result["before"], result["peak"], result["seconds"], result["answer"]))
            leftovers = [p for p in (work / kind / "var" / "imports").rglob("*") if p.is_file()]
            if leftovers:
                rows[-1] = (*rows[-1][:5], f"{rows[-1][5]} [LEFT {len(leftovers)} FILES]")
    finally:
        teardown_databases(config, verbosity=0)
    print(
        f"\n{'input':<15} {'input MiB':>10} {'RSS before':>11} {'peak RSS':>9} {'growth':>7} {'seconds':>8}  answer"
    )
    for kind, size, before, peak, seconds, answer in rows:
        print(
            f"{kind:<15} {size / 1024**2:>10.1f} {before:>10.0f}M {peak:>8.0f}M {peak - before:>6.0f}M "
            f"{seconds:>8.2f}  {answer[:110]}"
        )
    print("\nRSS in MiB of the importing process (VmHWM); growth: its peak minus its RSS before the import.")


if __name__ == "__main__":
    main()
