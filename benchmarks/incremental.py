"""The daily run after the first: what a new day costs compared with the first run.

    .venv/bin/python benchmarks/incremental.py [--series 100] [--days 365] [--freq D]

Writes a seeded synthetic panel (benchmarks/synthetic.py) to an input folder without its last period,
runs the daily flow once (the first run: everything ingested, validated, filled, windowed, trained from
scratch), then drops the last period in as a new file and runs the flow again on the same data dir, the
way the daily schedule does. Prints each task's own time in both runs and the second run's time as a
ratio of the first, per task and for the whole flow, and the rows each of validation, gap-fill and
windowing actually processed (an incremental run processes the new period only; see stores/snapshots.py).
With `--series 10 100 1000` it repeats that per panel size (growth).
"""

from __future__ import annotations

import argparse
import os
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


def rows_processed(result: dict) -> dict[str, str]:
    """Rows each data stage worked on, with its mode."""
    counts = {"ingest": (result["ingest"]["rows_new"], ""),
              "validate": (result["validate"]["rows_checked"], result["validate"].get("mode", "")),
              "gapfill": (result["gapfill"].get("rows_processed", result["gapfill"]["rows"]),
                          result["gapfill"].get("mode", "")),
              "windows": (result["windows"].get("rows_processed", 0), result["windows"].get("mode", ""))}
    return {name: f"{count} {mode}".strip() for name, (count, mode) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, nargs="+", default=[100])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--freq", choices=["h", "D"], default="D")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="bound the first run's training (default: the setting, 40)")
    args = parser.parse_args()
    import flows  # noqa: F401 - quiet environment defaults before Prefect

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations  # noqa: F401 - imported once up front, so no run's validation pays for it

    summary = []
    for n_series in args.series:
        summary.append((n_series, measure(n_series, args.days, args.freq, args.max_epochs)))
    if len(summary) > 1:
        print("\nGrowth: second run / first run (flow wall time and data-stage time), per panel size")
        print(f"{'series':>7}{'first wall s':>14}{'second wall s':>15}{'ratio':>8}{'stages 1st s':>14}"
              f"{'stages 2nd s':>14}{'ratio':>8}")
        for n_series, (first_wall, second_wall, first_stages, second_stages) in summary:
            print(f"{n_series:>7}{first_wall:>14.2f}{second_wall:>15.2f}{second_wall / first_wall:>8.2f}"
                  f"{first_stages:>14.2f}{second_stages:>14.2f}{second_stages / first_stages:>8.2f}")


def measure(n_series: int, days: int, freq: str, max_epochs: int | None) -> tuple[float, float, float, float]:
    from flows.daily import daily_forecast

    panel = synthetic_panel(n_series, freq, days)
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
            result = daily_forecast(input_path=str(inbox), data_dir=str(store), max_epochs=max_epochs)
            runs.append((label, time.perf_counter() - started, task_times(result), result))
    (_, first_wall, first, first_result), (_, second_wall, second, result) = runs
    print(f"\n{n_series} series x {days} days ({freq}); second run adds one period per series "
          f"(second training: {'warm start' if result['train'].get('warm_start') else 'full retrain'})\n")
    first_rows, second_rows = rows_processed(first_result), rows_processed(result)
    print(f"{'task':<10}{'first s':>10}{'second s':>10}{'second/first':>14}{'rows, first run':>22}"
          f"{'rows, second run':>24}")
    for name in TASKS:
        print(f"{name:<10}{first[name]:>10.2f}{second[name]:>10.2f}{second[name] / max(first[name], 1e-9):>14.2f}"
              f"{first_rows.get(name, ''):>22}{second_rows.get(name, ''):>24}")
    print(f"{'tasks':<10}{sum(first.values()):>10.2f}{sum(second.values()):>10.2f}"
          f"{sum(second.values()) / sum(first.values()):>14.2f}")
    print(f"{'flow wall':<10}{first_wall:>10.2f}{second_wall:>10.2f}{second_wall / first_wall:>14.2f}")
    stages = ("validate", "gapfill", "windows")
    first_stages, second_stages = sum(first[s] for s in stages), sum(second[s] for s in stages)
    print(f"{'data stages':<10}{first_stages:>10.2f}{second_stages:>10.2f}{second_stages / first_stages:>14.2f}"
          "   (validate + gap-fill + windows)")
    return first_wall, second_wall, first_stages, second_stages


if __name__ == "__main__":
    main()
