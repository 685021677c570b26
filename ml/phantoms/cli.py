"""Command line: ``python -m ml.phantoms --mri 20 --ct 20 --out DIR --seed 0 [--difficulty realistic]
[--readers 3 --sessions 2] [--readers-scenario realistic|correlated|paper_a|spammer]``.

``--readers N`` alone draws the SPEC §6.5 readers (:mod:`ml.phantoms.readers`: one sensitivity and
specificity per reader for every output, errors independent of the item, sessions drawn afresh);
``--readers-scenario`` the realistic readers of issue 18 (:mod:`ml.phantoms.realistic_readers`: item
difficulty from the phantoms' lesions, reader- and output-specific thresholds, session memory, an ordinal
CT reader with its own cut points), with ``--readers`` / ``--sessions`` / ``--spammer`` overriding the
scenario's panel. The realistic panel's drawn inter- and intra-reader κ go into readers.json and the
manifest (``readings.agreement``).

Output layout::

    DIR/manifest.json                      generator, seed, arguments, one entry per study
    DIR/mri-0000/{T1,STIR}/0001.dcm ...    + DIR/mri-0000/truth.json
    DIR/ct-0000/CT/0001.dcm ...            + DIR/ct-0000/SEG/seg.dcm + DIR/ct-0000/truth.json
    DIR/readings/readers.json              simulated reader parameters (and, realistic, their κ)
    DIR/readings/readings.json             reading records with API payloads

Output is deterministic for a seed: each study uses its own generator seeded by (seed, kind, index), so the
number of worker processes does not change it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ml.data.truth import Truth
from ml.phantoms.difficulty import PRESETS, difficulty
from ml.phantoms.readers import sample_readers, simulate_readings
from ml.phantoms.realistic_readers import (
    SCENARIO_NAMES,
    CtScenario,
    readers_json,
    scenario_for,
    simulate_realistic_readings,
)
from ml.phantoms.schema import GENERATOR_NAME, GENERATOR_VERSION
from ml.phantoms.studies import write_ct_study, write_mri_study


def _one(job: tuple[Path, int, str, int, str]) -> Truth:
    out, seed, kind, index, level = job
    d = difficulty(level)
    if kind == "mri":
        return write_mri_study(out, seed, index, difficulty=d)
    return write_ct_study(out, seed, index, difficulty=d)


def _entry(truth: Truth) -> dict[str, Any]:
    return {
        "study_id": truth.study_id,
        "kind": truth.kind,
        "path": truth.study_id,
        "truth": f"{truth.study_id}/truth.json",
        "patient_id": truth.patient_id,
        "study_instance_uid": truth.study_instance_uid,
        "series": {
            key: {
                "series_instance_uid": s.series_instance_uid,
                "folder": f"{truth.study_id}/{s.folder}",
                "n_instances": len(s.sop_instance_uids),
            }
            for key, s in truth.series.items()
        },
    }


def generate(
    out: Path,
    *,
    n_mri: int,
    n_ct: int,
    seed: int = 0,
    workers: int = 2,
    readers: int = 0,
    sessions: int | None = None,
    spammer: bool = False,
    adversarial: bool = False,
    level: str = "easy",
    readers_scenario: str | None = None,
) -> dict[str, Any]:
    """Write ``n_mri`` MRI and ``n_ct`` CT studies (and optional simulated readings) under ``out``, at the
    difficulty preset ``level`` (:mod:`ml.phantoms.difficulty`).

    ``readers_scenario`` (a name of ``ml.consensus.realistic.SCENARIOS``) reads them with realistic readers
    (``readers`` / ``sessions`` / ``spammer`` override its panel when given); without it ``readers``
    SPEC §6.5 readers do.

    Returns the manifest, also written to ``out/manifest.json``.
    """
    knobs = difficulty(level)
    scenario = None
    if readers_scenario is not None:
        if adversarial:
            raise ValueError("the realistic reader scenarios have no adversarial reader")
        scenario = scenario_for(readers_scenario, readers or None, sessions, spammer)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, seed, "ct", i, level) for i in range(n_ct)] + [
        (out, seed, "mri", i, level) for i in range(n_mri)
    ]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            truths = pool.map(_one, jobs, chunksize=1)
    else:
        truths = [_one(job) for job in jobs]
    truths.sort(key=lambda t: (t.kind != "mri", t.index))
    manifest: dict[str, Any] = {
        "generator": {"name": GENERATOR_NAME, "version": GENERATOR_VERSION},
        "seed": seed,
        "arguments": {
            "mri": n_mri,
            "ct": n_ct,
            "readers": readers,
            "sessions": sessions,
            "spammer": spammer,
            "adversarial": adversarial,
            "difficulty": level,
            "readers_scenario": readers_scenario,
        },
        "difficulty": knobs.to_dict(),
        "studies": [_entry(t) for t in truths],
    }
    if scenario is not None:
        rng = np.random.default_rng([seed, 3])
        ct_scenario = CtScenario()
        records, panel, agreement = simulate_realistic_readings(truths, scenario, rng, ct_scenario)
        folder = out / "readings"
        folder.mkdir(exist_ok=True)
        document = readers_json(scenario, ct_scenario, panel, agreement)
        (folder / "readers.json").write_text(json.dumps(document, indent=1))
        (folder / "readings.json").write_text(json.dumps(records))
        manifest["readings"] = {
            "readers": "readings/readers.json",
            "readings": "readings/readings.json",
            "count": len(records),
            "scenario": scenario.name,
            "agreement": agreement | {"mri": _summary(agreement["mri"])},
        }
    elif readers or spammer or adversarial:
        rng = np.random.default_rng([seed, 3])
        profiles = sample_readers(rng, readers, sessions=sessions, spammer=spammer, adversarial=adversarial)
        records = simulate_readings(truths, profiles, rng)
        folder = out / "readings"
        folder.mkdir(exist_ok=True)
        (folder / "readers.json").write_text(json.dumps([asdict(p) for p in profiles], indent=1))
        (folder / "readings.json").write_text(json.dumps(records))
        manifest["readings"] = {
            "readers": "readings/readers.json",
            "readings": "readings/readings.json",
            "count": len(records),
        }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _summary(mri: dict[str, Any]) -> dict[str, Any]:
    """The MRI agreement without its per-output table (which readers.json keeps)."""
    return {k: v for k, v in mri.items() if k != "per_output"}


def format_agreement(agreement: dict[str, Any]) -> str:
    """One line of the drawn κ: MRI mean over outputs (Cohen between, Fleiss, within), CT QWK."""

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    m = agreement["mri"]
    line = f"readers {agreement['scenario']}: MRI kappa inter {f(m['inter'])} (Fleiss {f(m['fleiss'])}), intra {f(m['intra'])}"
    if "ct" in agreement:
        c = agreement["ct"]
        line += f"; CT QWK inter {f(c['qwk_inter'])}, intra {f(c['qwk_intra'])} (unweighted {f(c['inter'])} / {f(c['intra'])})"
    return line


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate, print a one-line summary; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ml.phantoms", description=__doc__.split("\n")[0])
    parser.add_argument("--mri", type=int, default=0, help="number of MRI studies (T1 + STIR)")
    parser.add_argument("--ct", type=int, default=0, help="number of CT studies (with SEG)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, multiprocessing.cpu_count()))
    parser.add_argument(
        "--difficulty",
        choices=sorted(PRESETS),
        default="easy",
        help="phantom difficulty preset (default easy)",
    )
    parser.add_argument("--readers", type=int, default=0, help="simulated readers (0 = no readings)")
    parser.add_argument("--sessions", type=int, default=None, help="sessions per reader (default: 1-3 each)")
    parser.add_argument(
        "--readers-scenario",
        choices=SCENARIO_NAMES,
        default=None,
        help="realistic readers (issue 18) of this scenario instead of the SPEC 6.5 readers",
    )
    parser.add_argument("--spammer", action="store_true", help="add one reader answering at random")
    parser.add_argument("--adversarial", action="store_true", help="add one reader contradicting the truth")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    manifest = generate(
        args.out,
        n_mri=args.mri,
        n_ct=args.ct,
        seed=args.seed,
        workers=args.workers,
        readers=args.readers,
        sessions=args.sessions,
        spammer=args.spammer,
        adversarial=args.adversarial,
        level=args.difficulty,
        readers_scenario=args.readers_scenario,
    )
    elapsed = time.perf_counter() - start
    print(f"wrote {len(manifest['studies'])} studies to {args.out} in {elapsed:.1f} s")
    if "agreement" in manifest.get("readings", {}):
        print(format_agreement(manifest["readings"]["agreement"]))
    return 0
