"""Seeded synthetic panels for benchmarks: realistic seasonality, noise, level shifts, gaps and duplicates.

    .venv/bin/python benchmarks/synthetic.py --series 100 --freq h --days 365 --out /tmp/panel.csv

Each series has a random level (log-uniform over three decades), daily and weekly cycles (hourly data)
or a weekly and yearly cycle (daily data), multiplicative log-normal noise, an occasional level shift,
about 0.5% of points dropped (gaps) and about 0.1% of rows duplicated (identical), in long format.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_panel(n_series: int, freq: str = "D", days: int = 365, seed: int = 0, gap_share: float = 0.005,
                    duplicate_share: float = 0.001, start: str = "2024-01-01") -> pd.DataFrame:
    """Long-format panel (series_id, timestamp ISO string, value) of `n_series` series over `days` days."""
    rng = np.random.default_rng(seed)
    periods = days * 24 if freq == "h" else days
    stamps = pd.date_range(start, periods=periods, freq=freq)
    hour = stamps.hour.to_numpy()
    weekday = stamps.day_of_week.to_numpy()
    yearday = stamps.day_of_year.to_numpy()
    frames = []
    for number in range(n_series):
        level = 10 ** rng.uniform(1, 4)
        daily = 0.4 * np.sin(2 * np.pi * (hour + rng.uniform(0, 24)) / 24) if freq == "h" else 0.0
        weekly = rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * (weekday + rng.uniform(0, 7)) / 7)
        yearly = 0.2 * np.sin(2 * np.pi * (yearday + rng.uniform(0, 365)) / 365.25)
        shift = np.where(np.arange(periods) > rng.integers(periods // 2, periods), rng.uniform(0.7, 1.4), 1.0)
        noise = np.exp(rng.normal(0, 0.08, periods))
        values = level * (1 + daily + weekly + yearly) * shift * noise
        keep = rng.random(periods) >= gap_share
        frames.append(pd.DataFrame({"series_id": f"series-{number:05d}", "timestamp": stamps[keep],
                                    "value": np.round(values[keep], 3)}))
    panel = pd.concat(frames, ignore_index=True)
    duplicates = panel.sample(frac=duplicate_share, random_state=seed)
    panel = pd.concat([panel, duplicates], ignore_index=True)
    panel["timestamp"] = panel["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return panel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--freq", choices=["h", "D"], default="D")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    panel = synthetic_panel(args.series, args.freq, args.days, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".parquet":
        panel.to_parquet(args.out, index=False)
    else:
        panel.to_csv(args.out, index=False)
    print(f"{len(panel)} rows, {args.series} series ({args.freq}, {args.days} days) -> {args.out}")


if __name__ == "__main__":
    main()
