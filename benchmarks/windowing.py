"""Windowing benchmark: our window index against the tutorial loop and a bare numpy+pyarrow reference.

    .venv/bin/python benchmarks/windowing.py [--series 100] [--days 365] [--freq D]

All three produce the same lookback/horizon windows of the same clean panel and write them to Parquet:
- tutorial loop: one window at a time in Python (`for i in range(...): X.append(values[i:i+L])`), then
  the stacked arrays to Parquet (what most LSTM tutorials do);
- reference: `numpy.lib.stride_tricks.sliding_window_view` per series + `pyarrow.parquet.write_table` of
  the materialised windows;
- ours: `tasks.windows.plan_windows` (scalers fitted on the training slice, calendar features, split)
  writing `series.parquet` + `index.parquet` (window indices over shared series arrays).
Prints windows/s, bytes on disk per window, and the ratios the performance issue sets targets for.

A second table times the windowing step alone, without Parquet and without our scaling and features:
the loop's slicing, the reference's strided view copied out, and our window index (`window_starts`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from synthetic import synthetic_panel  # noqa: E402

from forecasting.gapfill import gapfill  # noqa: E402
from forecasting.windows import plan_windows, resolve_sizes, window_starts  # noqa: E402
from stores import files  # noqa: E402


def clean_panel(n_series: int, freq: str, days: int) -> pd.DataFrame:
    raw = synthetic_panel(n_series, freq, days).drop_duplicates(["series_id", "timestamp"])
    raw["timestamp"] = pd.to_datetime(raw["timestamp"], utc=True).astype("datetime64[us, UTC]")
    raw["series_id"] = raw["series_id"].astype("string")
    return gapfill(raw.sort_values(["series_id", "timestamp"]).reset_index(drop=True), freq, "linear", 10_000).clean


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def tutorial_loop(clean: pd.DataFrame, lookback: int, horizon: int, out: Path) -> int:
    inputs, targets = [], []
    for _, group in clean.groupby("series_id"):
        values = group["value"].to_numpy("float32")
        for i in range(len(values) - lookback - horizon + 1):
            inputs.append(values[i:i + lookback])
            targets.append(values[i + lookback:i + lookback + horizon])
    x, y = np.array(inputs), np.array(targets)
    pq.write_table(pa.table({"x": pa.FixedSizeListArray.from_arrays(x.ravel(), lookback),
                             "y": pa.FixedSizeListArray.from_arrays(y.ravel(), horizon)}), out)
    return len(x)


def loop_windows_only(values_by_series: list[np.ndarray], lookback: int, horizon: int) -> int:
    inputs, targets = [], []
    for values in values_by_series:
        for i in range(len(values) - lookback - horizon + 1):
            inputs.append(values[i:i + lookback])
            targets.append(values[i + lookback:i + lookback + horizon])
    x, _ = np.array(inputs), np.array(targets)
    return len(x)


def reference_windows_only(values_by_series: list[np.ndarray], lookback: int, horizon: int) -> int:
    views = [np.lib.stride_tricks.sliding_window_view(v, lookback + horizon) for v in values_by_series]
    return len(np.concatenate(views))


def ours_windows_only(lengths: np.ndarray, lookback: int, horizon: int) -> int:
    return len(window_starts(lengths, lookback, horizon))


def reference(clean: pd.DataFrame, lookback: int, horizon: int, out: Path) -> int:
    xs, ys = [], []
    for _, group in clean.groupby("series_id"):
        values = group["value"].to_numpy("float32")
        view = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon)
        xs.append(view[:, :lookback])
        ys.append(view[:, lookback:])
    x, y = np.concatenate(xs), np.concatenate(ys)
    pq.write_table(pa.table({"x": pa.FixedSizeListArray.from_arrays(x.ravel(), lookback),
                             "y": pa.FixedSizeListArray.from_arrays(y.ravel(), horizon)}), out)
    return len(x)


def ours(clean: pd.DataFrame, lookback: int, horizon: int, freq: str, out: Path) -> int:
    plan = plan_windows(clean, freq, lookback, horizon, 0.2)
    files.write_parquet(plan.series[["series_id", "timestamp", "value", "imputed", *plan.features]],
                        out / "series.parquet")
    files.write_parquet(plan.index, out / "index.parquet")
    return len(plan.index)


def timed(function, *args, repeat: int = 3) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--freq", choices=["h", "D"], default="D")
    args = parser.parse_args()
    clean = clean_panel(args.series, args.freq, args.days)
    lookback, horizon = resolve_sizes(args.freq, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clean_bytes = size_of(Path(tmp) / "clean.parquet") if files.write_parquet(
            clean[["series_id", "timestamp", "value"]], tmp / "clean.parquet") else 0
        (tmp / "ours").mkdir()
        loop_s, loop_n = timed(tutorial_loop, clean, lookback, horizon, tmp / "loop.parquet", repeat=1)
        ref_s, ref_n = timed(reference, clean, lookback, horizon, tmp / "ref.parquet")
        our_s, our_n = timed(ours, clean, lookback, horizon, args.freq, tmp / "ours")
        sizes = {"loop": size_of(tmp / "loop.parquet"), "ref": size_of(tmp / "ref.parquet"), "ours": size_of(tmp / "ours")}
    print(f"\n{args.series} series x {args.days} days ({args.freq}), {len(clean)} clean rows "
          f"({clean_bytes / 1e6:.2f} MB as Parquet); lookback {lookback}, horizon {horizon}\n")
    print(f"{'method':<16}{'windows':>10}{'seconds':>10}{'windows/s':>14}{'bytes/window':>14}")
    for name, seconds, count, size in (("tutorial loop", loop_s, loop_n, sizes["loop"]),
                                       ("reference", ref_s, ref_n, sizes["ref"]),
                                       ("ours", our_s, our_n, sizes["ours"])):
        print(f"{name:<16}{count:>10}{seconds:>10.3f}{count / seconds:>14.0f}{size / count:>14.1f}")
    print(f"\nours vs tutorial loop: {(our_n / our_s) / (loop_n / loop_s):.1f}x windows/s (target >= 100x)")
    print(f"ours vs reference:     {(our_n / our_s) / (ref_n / ref_s):.2f}x windows/s (target >= 0.8x)")
    print(f"ours on disk:          {sizes['ours'] / clean_bytes:.2f}x the clean series (target <= 4x); "
          f"reference {sizes['ref'] / clean_bytes:.1f}x")
    print("(ours also fits per-series scalers, adds calendar features and splits by time; the others do not)")

    values_by_series = [g["value"].to_numpy("float32") for _, g in clean.groupby("series_id")]
    lengths = np.array([len(v) for v in values_by_series])
    loop_s, loop_n = timed(loop_windows_only, values_by_series, lookback, horizon, repeat=1)
    ref_s, ref_n = timed(reference_windows_only, values_by_series, lookback, horizon)
    our_s, our_n = timed(ours_windows_only, lengths, lookback, horizon)
    print(f"\nwindowing step alone (no Parquet, no scaling or features):")
    print(f"{'method':<16}{'windows':>10}{'seconds':>10}{'windows/s':>14}")
    for name, seconds, count in (("tutorial loop", loop_s, loop_n), ("reference", ref_s, ref_n),
                                 ("ours (index)", our_s, our_n)):
        print(f"{name:<16}{count:>10}{seconds:>10.4f}{count / seconds:>14.0f}")
    print(f"ours vs tutorial loop: {(our_n / our_s) / (loop_n / loop_s):.0f}x windows/s (target >= 100x); "
          f"vs reference {(our_n / our_s) / (ref_n / ref_s):.1f}x")


if __name__ == "__main__":
    main()
