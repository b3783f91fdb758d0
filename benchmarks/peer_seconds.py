"""One peer's fit+predict wall seconds on one cut, in the benchmark environment (dev_flow_time.py's reference).

    .venv-bench/bin/python benchmarks/peer_seconds.py --input CUT.csv --horizon H --season M [--peer "NF LSTM"]

The cut's rows (series_id, timestamp, value) go onto each series' regular grid as dev_panel.py puts them,
and the peer is built as dev_panel.py builds it (NeuralForecast LSTM: `h=H`, `input_size` by frequency,
`max_steps=300`, `scaler_type="standard"`, `random_seed=0`). Its imports are paid before the clock starts,
as the peer cache's seconds are. Prints one JSON line: {"peer": ..., "seconds": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dev_panel import PEERS, fit_predict, panel_of  # noqa: E402


def grid_frequency(rows: pd.DataFrame) -> str:
    """The cut's pandas frequency, read off its longest series (the panel files have no gaps)."""
    longest = rows.groupby("series_id")["timestamp"].count().idxmax()
    stamps = pd.to_datetime(rows.loc[rows["series_id"] == longest, "timestamp"], utc=True, format="ISO8601")
    freq = pd.infer_freq(stamps.sort_values().dt.tz_convert(None))
    if freq is None:
        raise SystemExit(f"cannot tell the frequency of series {longest!r}")
    # pandas names a weekly grid by its weekday (W-SUN), which is no fixed step; the project, and with it
    # the peers' input size in dev_panel.py, calls it 7D.
    return "7D" if freq.startswith("W") else freq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--season", type=int, required=True)
    parser.add_argument("--peer", default="NF LSTM", choices=PEERS)
    args = parser.parse_args()
    rows = pd.read_csv(args.input)
    freq = grid_frequency(rows)
    train = panel_of(rows, freq)
    if args.peer.startswith("NF"):
        import neuralforecast.models  # noqa: F401 - imports before the clock, as in the peer cache
    started = time.perf_counter()
    fit_predict(args.peer, train, args.horizon, args.season, freq)
    print(json.dumps({"peer": args.peer, "seconds": round(time.perf_counter() - started, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
