"""`make test-e2e-repeat`: the browser tests N times in a row, stopping at the first failing run; a table.

Each run is a fresh pytest process (its own gunicorn, worker, browser and test database), as in CI. Logs in
artifacts/e2e-repeat/run-N.log. Exit status 1 when a run failed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "artifacts" / "e2e-repeat"
_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def run_once(n: int, workers: str, extra: list[str]) -> tuple[int, float, dict[str, int], str]:
    """One pytest run of tests/e2e; (exit status, seconds, counts by outcome, first failing test)."""
    log = LOGS / f"run-{n}.log"
    cmd = [sys.executable, "-m", "pytest", "tests/e2e", "-p", "no:cacheprovider", "-q", "-rfE"]
    cmd += ["-n", workers, "--dist", "loadfile"] if workers != "0" else []
    started = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(
            cmd + extra, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    summary = text.strip().splitlines()[-1] if text.strip() else ""
    counts: dict[str, int] = {}
    for number, outcome in _COUNTS.findall(summary):
        counts["error" if outcome.startswith("error") else outcome] = int(number)
    failing = next(
        (line.split(" ")[1] for line in text.splitlines() if line.startswith(("FAILED ", "ERROR "))), ""
    )
    return rc, seconds, counts, failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=int(os.environ.get("E2E_REPEAT", "10")))
    parser.add_argument("--workers", default=os.environ.get("PYTEST_WORKERS", "2"))
    args, extra = parser.parse_known_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    header = f"{'run':>3} {'result':<6} {'seconds':>8} {'passed':>6} {'failed':>6} {'errors':>6} {'skipped':>7}  first failure"
    status = 0
    for n in range(1, args.times + 1):
        rc, seconds, counts, failing = run_once(n, args.workers, extra)
        result = "pass" if rc == 0 else "FAIL"
        rows.append(
            f"{n:>3} {result:<6} {seconds:>8.1f} {counts.get('passed', 0):>6} {counts.get('failed', 0):>6}"
            f" {counts.get('error', 0):>6} {counts.get('skipped', 0):>7}  {failing}"
        )
        print(rows[-1], flush=True)
        if rc != 0:
            status = 1
            print(f"run {n} failed (exit {rc}): stopping; its log is {LOGS / f'run-{n}.log'}")
            break
    passed = sum(row.split()[1] == "pass" for row in rows)
    print(f"\ne2e suite, {passed} of {len(rows)} runs passed in a row (asked for {args.times}):")
    print(header)
    print("\n".join(rows))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
