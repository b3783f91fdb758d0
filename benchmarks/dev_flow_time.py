"""Whole-flow seconds per cut of the development panel, run as a user runs it, against NeuralForecast's LSTM.

Issue 12 asks that each cut's whole flow be faster than NeuralForecast's fit+predict on it. The backtest
(`dev_backtest.py`) times training only; this times what a user waits for. For every run of the chosen
datasets and each origin the peers were scored at, the run's rows up to the cut go into a CSV and

    lstm-forecast run --input CUT.csv --as-of CUT --horizon H --data-dir <fresh>

runs in its own process: process start to exit, Prefect's temporary API server included (one PREFECT_HOME
for all cuts, as a user's machine keeps one). Right after it, on the same machine and the same rows,
NeuralForecast's LSTM fits and predicts in the benchmark environment (benchmarks/peer_seconds.py, built as
dev_panel.py builds it; its imports are not timed): the reference is measured in the same run, so a slow or
busy machine slows both. `--cached-peer` instead divides the peer cache's fit+predict seconds over the
run's cuts (benchmarks/results/dev_panel_peers.json, measured by dev_panel.py on whatever machine ran it).
Cuts run one at a time.

    make .venv-bench/.installed   # once: the benchmark environment with NeuralForecast (torch on the CPU)
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
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


def peer_cuts(cache: dict, run: str) -> tuple[list[str], int, int, float] | None:
    """(cuts, horizon, season, NeuralForecast's cached seconds over all cuts) of a run, from the peer cache's
    key `run|peer|cut,cut,cut|H|m`; None where the peer has no time for the run."""
    for key, value in cache.items():
        name, peer, cuts, horizon, season = key.split("|")
        if name == run and peer == PEER and value.get("seconds"):
            return cuts.split(","), int(horizon), int(season), float(value["seconds"])
    return None


def write_history(rows: pd.DataFrame, cut: str, work: Path) -> Path:
    """The run's rows up to `cut`, as the CSV a user would hand over."""
    stamps = pd.to_datetime(rows["timestamp"], utc=True, format="ISO8601")
    history = work / "history.csv"
    rows[stamps <= pd.Timestamp(cut)].to_csv(history, index=False)
    return history


def peer_seconds(history: Path, horizon: int, season: int) -> float:
    """NeuralForecast LSTM's fit+predict wall seconds on the cut, now, in the benchmark environment."""
    command = [str(BENCH_PYTHON), str(ROOT / "benchmarks" / "peer_seconds.py"), "--input", str(history),
               "--horizon", str(horizon), "--season", str(season), "--peer", PEER]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{PEER} failed on {history}:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def prepare_prefect_home(prefect_home: Path) -> None:
    """Create Prefect's database in PREFECT_HOME before the first cut, as a user's machine has it after its
    first run (creating it cost the first cut 11 s on two cores, 30 s or more on a slow machine)."""
    command = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
    subprocess.run(command, cwd=ROOT, env={**os.environ, "PREFECT_HOME": str(prefect_home)}, check=True,
                   capture_output=True, text=True)


def flow_seconds(history: Path, cut: str, horizon: int, work: Path, prefect_home: Path) -> float:
    """Wall seconds of one `lstm-forecast run` on the cut's history, in a fresh data dir."""
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
    parser.add_argument("--cuts", type=int, metavar="K", help="only each run's K latest cuts (default: all 3)")
    parser.add_argument("--cached-peer", action="store_true",
                        help="compare with the peer cache's seconds instead of timing NeuralForecast now")
    args = parser.parse_args()
    if not args.cached_peer and not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} is missing: `make .venv-bench/.installed`, or pass --cached-peer")
    cache = json.loads(PEERS.read_text())
    source = "cache" if args.cached_peer else "now"
    lines = [f"{'run':<16}{'cuts':>5}{'ours s/cut':>12}{f'NF LSTM s/cut ({source})':>24}{'ours / NF':>11}"
             "   ours | NF, each cut"]
    with tempfile.TemporaryDirectory() as tmp:
        work, prefect_home = Path(tmp), Path(tmp) / "prefect-home"
        prefect_home.mkdir()
        prepare_prefect_home(prefect_home)
        for dataset in devpanel.by_name(args.datasets):
            for run, rows in devpanel.runs(dataset):
                found = peer_cuts(cache, run)
                if (args.runs and run not in args.runs) or found is None:
                    continue
                cuts, horizon, season, cached = found
                ours, theirs = [], []
                for cut in cuts[-args.cuts:] if args.cuts else cuts:
                    history = write_history(rows, cut, work)
                    ours.append(flow_seconds(history, cut, horizon, work, prefect_home))
                    theirs.append(cached / len(cuts) if args.cached_peer else peer_seconds(history, horizon, season))
                mine, peer = statistics.mean(ours), statistics.mean(theirs)
                each = " ".join(f"{s:.1f}" for s in ours) + " | " + " ".join(f"{s:.1f}" for s in theirs)
                lines.append(f"{run:<16}{len(ours):>5}{mine:>12.1f}{peer:>24.1f}{mine / peer:>11.2f}   {each}")
                print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
