"""Whole-flow wall time and Prefect's overhead: the flow's wall time minus the tasks' own time.

    .venv/bin/python benchmarks/flow_overhead.py [--input data/sample] [--runs 2]

Runs the daily flow in-process (Prefect's API as configured: a temporary local server unless
PREFECT_API_URL points at a running one), `--runs` times on the same fresh data dir, and prints for each
run the wall time, the sum of the tasks' own durations (each task measures itself) and the
difference: orchestration, state tracking, artifacts and result handling. The temporary server's start
is paid once, before the first run, and reported separately.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    import flows  # noqa: F401 - quiet environment defaults before Prefect
    from prefect import flow

    started = time.perf_counter()

    @flow
    def noop() -> None:
        return None

    noop()  # starts the API (a temporary server when none is configured)
    startup = time.perf_counter() - started
    from flows.daily import daily_forecast

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for number in range(1, args.runs + 1):
            started = time.perf_counter()
            result = daily_forecast(input_path=str(args.input), data_dir=tmp)
            wall = time.perf_counter() - started
            # Every stage's typed result (forecasting/results.py, stores/archive.py) measures its own time.
            tasks = {name: summary.duration_s for name, summary in result.items()}
            rows.append((number, wall, sum(tasks.values()), tasks))
    print(f"\nPrefect API start (once): {startup:.1f} s\n")
    print(f"{'run':>4}{'flow wall s':>13}{'tasks s':>10}{'overhead s':>12}{'overhead %':>12}")
    for number, wall, busy, _ in rows:
        print(f"{number:>4}{wall:>13.2f}{busy:>10.2f}{wall - busy:>12.2f}{100 * (wall - busy) / wall:>11.1f}%")
    print("\nper task (last run): " + ", ".join(f"{k} {v:.2f}s" for k, v in rows[-1][3].items()))


if __name__ == "__main__":
    main()
