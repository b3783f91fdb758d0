"""Whole-flow seconds per cut of the development panel, run as a user runs it, against NeuralForecast's LSTM.

Issue 12 asks that each cut's whole flow be faster than NeuralForecast's fit+predict on it. The backtest
(`dev_backtest.py`) times training only; this times what a user waits for. For every run of the chosen
datasets and each origin the peers were scored at, the run's rows up to the cut go into a CSV and

    lstm-forecast run --input CUT.csv --as-of CUT --horizon H --data-dir <fresh>

runs in its own process: process start to exit, Prefect's temporary API server included (one PREFECT_HOME
for all cuts, as a user's machine keeps one). NeuralForecast's seconds per cut are its fit+predict over
the run's cuts from the peer cache (benchmarks/results/dev_panel_peers.json, measured by dev_panel.py in
the benchmark environment on this machine), divided by the number of cuts. Cuts run one at a time.

    LSTM_FORECAST_DEV_DATA=../shared/data .venv/bin/python benchmarks/dev_flow_time.py [--datasets bike_daily]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import devpanel  # noqa: E402

PEERS = ROOT / "benchmarks" / "results" / "dev_panel_peers.json"
PEER = "NF LSTM"


def peer_cuts(cache: dict, run: str) -> tuple[list[str], int, float] | None:
    """(cuts, horizon, NeuralForecast's seconds over all of them) of a run, from the peer cache's key
    `run|peer|cut,cut,cut|H|m`; None where the peer has no time for the run."""
    for key, value in cache.items():
        name, peer, cuts, horizon, _ = key.split("|")
        if name == run and peer == PEER and value.get("seconds"):
            return cuts.split(","), int(horizon), float(value["seconds"])
    return None


def flow_seconds(rows: pd.DataFrame, cut: str, horizon: int, work: Path, prefect_home: Path) -> float:
    """Wall seconds of one `lstm-forecast run` on the rows up to `cut`, in a fresh data dir."""
    stamps = pd.to_datetime(rows["timestamp"], utc=True, format="ISO8601")
    history = work / "history.csv"
    rows[stamps <= pd.Timestamp(cut)].to_csv(history, index=False)
    data_dir = Path(tempfile.mkdtemp(dir=work))
    command = [sys.executable, "-m", "flows.cli", "run", "--input", str(history), "--as-of", cut,
               "--horizon", str(horizon), "--data-dir", str(data_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PREFECT_HOME": str(prefect_home)},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lstm-forecast run failed at {cut}:\n{done.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", help="default: all")
    parser.add_argument("--runs", nargs="*", help="only these runs (e.g. m4_daily-3); default: all")
    args = parser.parse_args()
    cache = json.loads(PEERS.read_text())
    lines = [f"{'run':<16}{'cuts':>5}{'ours s/cut':>12}{'NF LSTM s/cut':>15}{'ours / NF':>11}   ours, each cut"]
    with tempfile.TemporaryDirectory() as tmp:
        work, prefect_home = Path(tmp), Path(tmp) / "prefect-home"
        prefect_home.mkdir()
        for dataset in devpanel.by_name(args.datasets):
            for run, rows in devpanel.runs(dataset):
                found = peer_cuts(cache, run)
                if (args.runs and run not in args.runs) or found is None:
                    continue
                cuts, horizon, peer_seconds = found
                ours = [flow_seconds(rows, cut, horizon, work, prefect_home) for cut in cuts]
                peer = peer_seconds / len(cuts)
                each = " ".join(f"{s:.1f}" for s in ours)
                lines.append(f"{run:<16}{len(cuts):>5}{statistics.mean(ours):>12.1f}{peer:>15.1f}"
                             f"{statistics.mean(ours) / peer:>11.2f}   {each}")
                print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
