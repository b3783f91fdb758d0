"""The daily run after the first: what a new day costs compared with the first run.

    .venv/bin/python benchmarks/incremental.py [--series 100] [--days 365] [--freq D]

Writes a seeded synthetic panel (benchmarks/synthetic.py) to an input folder without its last period,
runs the daily flow once (the first run: everything ingested, validated, filled, windowed, trained from
scratch), then drops the last period in as a new file and runs the flow again on the same data dir, the
way the daily schedule does. Prints each task's own time in both runs and the second run's time as a
ratio of the first, per task and for the whole flow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from synthetic import synthetic_panel  # noqa: E402

TASKS = ("ingest", "validate", "gapfill", "windows", "train", "publish")


def task_times(result: dict) -> dict[str, float]:
    times = {name: result[name]["duration_s"] for name in TASKS[:-1]}
    times["publish"] = result["published"]["duration_s"]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--freq", choices=["h", "D"], default="D")
    args = parser.parse_args()
    import flows  # noqa: F401 - quiet environment defaults before Prefect
    from flows.daily import daily_forecast

    panel = synthetic_panel(args.series, args.freq, args.days)
    last = panel["timestamp"].max()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        inbox, store = Path(tmp) / "inbox", Path(tmp) / "store"
        inbox.mkdir()
        panel[panel["timestamp"] < last].to_csv(inbox / "history.csv", index=False)
        for label in ("first run", "second run (+1 period)"):
            if runs:
                panel[panel["timestamp"] == last].to_csv(inbox / f"{pd.Timestamp(last):%Y%m%dT%H}.csv", index=False)
            started = time.perf_counter()
            result = daily_forecast(input_path=str(inbox), data_dir=str(store))
            runs.append((label, time.perf_counter() - started, task_times(result), result))
    (_, first_wall, first, _), (_, second_wall, second, result) = runs
    print(f"\n{args.series} series x {args.days} days ({args.freq}); second run adds one period per series "
          f"(second training: {'warm start' if result['train'].get('warm_start') else 'full retrain'})\n")
    print(f"{'task':<10}{'first s':>10}{'second s':>10}{'second/first':>14}")
    for name in TASKS:
        print(f"{name:<10}{first[name]:>10.2f}{second[name]:>10.2f}{second[name] / max(first[name], 1e-9):>14.2f}")
    print(f"{'tasks':<10}{sum(first.values()):>10.2f}{sum(second.values()):>10.2f}"
          f"{sum(second.values()) / sum(first.values()):>14.2f}")
    print(f"{'flow wall':<10}{first_wall:>10.2f}{second_wall:>10.2f}{second_wall / first_wall:>14.2f}")


if __name__ == "__main__":
    main()
