"""``python -m ml.bench accuracy|speed``: the model acceptance table and the throughput benchmark.

python -m ml.bench accuracy --out var/bench --seeds final   # the final table: 3 untouched seed pairs, CIs
python -m ml.bench accuracy --out var/bench [--quick] [--device cuda]  # dev seeds; phantoms -> 3 models
python -m ml.bench accuracy --out var/bench --only lesions  # reuses that folder's phantoms and crops
python -m ml.bench speed [--full] [--device cuda]         # samples/s + peak memory vs plain fp32 loop
python -m ml.bench inference --out var/bench/seed-1001-2002  # pre-read timing with one seed pair's models
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.bench.accuracy import QUICK, RECORD_DIR, BenchSizes, format_protocol, run_protocol
from ml.bench.protocol import seed_pairs


def main(argv: Sequence[str] | None = None) -> int:
    """Run one benchmark; prints its table. Returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ml.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    acc = sub.add_parser("accuracy", help="train all three models on phantoms and print the acceptance table")
    acc.add_argument("--out", type=Path, default=Path("var/bench"))
    acc.add_argument("--quick", action="store_true", help="tiny sizes (smoke run, a few minutes)")
    acc.add_argument(
        "--seeds",
        default="dev",
        help="dev (development pairs), final (the untouched pairs of the final table) or TRAIN:TEST[,...]"
        " (ml.bench.protocol; RESULTS.md lists which were used for what)",
    )
    acc.add_argument(
        "--record",
        type=Path,
        default=None,
        help="keep each scored seed pair here and skip pairs already recorded (a cut-off run resumes);"
        " default for --seeds final: ml/bench/final",
    )
    acc.add_argument("--bootstrap", type=int, default=2000, help="clustered bootstrap replicates")
    acc.add_argument(
        "--difficulty",
        choices=["easy", "realistic", "hard"],
        default="realistic",
        help="phantom difficulty preset (default realistic; RESULTS.md's figures before issue 18 are easy)",
    )
    acc.add_argument(
        "--readers-scenario",
        choices=["realistic", "correlated", "paper_a", "spammer"],
        default="realistic",
        help="simulated readers of the training phantoms (ml.consensus.realistic; default realistic, no spammer)",
    )
    acc.add_argument(
        "--only", nargs="+", choices=["contours", "lesions", "ct"], default=["contours", "lesions", "ct"]
    )
    acc.add_argument(
        "--sizes",
        type=json.loads,
        default={},
        help='JSON overrides of phantom counts and recipe epochs, e.g. {"ct_epochs": 2} (printed with the table)',
    )
    acc.add_argument(
        "--threads", type=int, default=2, help="torch threads (1 is faster on busy shared cores)"
    )
    acc.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda"],
        help="where the models train and predict (RESULTS.md's figures are CPU)",
    )
    speed = sub.add_parser("speed", help="training throughput vs a plain fp32 loop")
    speed.add_argument("--full", action="store_true", help="full sizes (GPU); default tiny on CPU")
    speed.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    speed.add_argument("--steps", type=int, default=0, help="timed steps per model (default 20 GPU, 3 CPU)")
    speed.add_argument(
        "--loops",
        nargs="+",
        choices=["shared", "shared_cl"],
        default=["shared", "shared_cl"],
        help="shared-loop variants to time beside the plain loop (each compiles once per model)",
    )
    inf = sub.add_parser("inference", help="time an MRI pre-read (contours + lesions) and a CT pre-read")
    inf.add_argument(
        "--out", type=Path, default=Path("var/bench/seed-1001-2002"), help="one seed pair's folder"
    )
    args = parser.parse_args(argv)
    if args.command == "accuracy":
        sizes = dataclasses.replace(QUICK if args.quick else BenchSizes(), **args.sizes)
        protocol, pairs = seed_pairs(args.seeds)
        summary = run_protocol(
            args.out,
            sizes,
            pairs,
            protocol=protocol,
            n_boot=args.bootstrap,
            record=args.record or (RECORD_DIR if protocol == "final" else None),
            log=lambda m: print(m, file=sys.stderr, flush=True),
            only=tuple(args.only),
            threads=args.threads,
            device=args.device,
            difficulty=args.difficulty,
            readers_scenario=args.readers_scenario,
        )
        print(format_protocol(summary))
    elif args.command == "speed":
        from ml.bench.speed import format_speed, run_speed

        def row_done(row: dict[str, Any]) -> None:
            print(json.dumps(row), file=sys.stderr, flush=True)

        print(
            format_speed(
                run_speed(
                    full=args.full, device=args.device, steps=args.steps, loops=args.loops, on_row=row_done
                )
            )
        )
    else:
        from ml.bench.inference import format_inference, run_inference

        print(format_inference(run_inference(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
