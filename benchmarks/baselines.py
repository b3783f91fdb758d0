"""Baseline benchmark: the LSTM backtest against seasonal naive, AutoETS and AutoTheta on the same cuts.

Runs in its own environment (`make bench-baselines` builds .venv-bench from benchmarks/requirements-bench.lock),
because statsforecast requires pandas < 3 while the pipeline pins pandas 3. It runs
`lstm-forecast backtest` from the project's environment (or reads a report given with --lstm-report),
takes the origins, horizon and season from that report, fits the statsforecast baselines on exactly the
same cuts, scores everything with the project's own metric code (forecasting/metrics.py), and prints a table
with each method's MASE as a ratio to the LSTM's (below 1: the method beats the LSTM).

    .venv-bench/bin/python benchmarks/baselines.py [--input data/sample] [--origins 3] [--horizon 14]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from dev_panel import fit_predict, panel_of, score  # noqa: E402 - the dev-panel benchmark fits and scores peers


def run_lstm_backtest(args: argparse.Namespace, workdir: Path) -> tuple[dict, float]:
    report = workdir / "lstm-backtest.json"
    command = [str(ROOT / ".venv" / "bin" / "lstm-forecast"), "backtest", "--input", str(args.input),
               "--data-dir", str(workdir / "store"), "--origins", str(args.origins), "--output", str(report)]
    if args.horizon:
        command += ["--horizon", str(args.horizon)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"lstm-forecast backtest failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(report.read_text()), seconds


def load_panel(path: Path, freq: str) -> pd.DataFrame:
    """Long-format files as statsforecast wants them (unique_id, ds, y), regular, gaps filled linearly."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".parquet"))
    frames = [pd.read_parquet(f) if f.suffix.lower() == ".parquet" else pd.read_csv(f) for f in files]
    raw = pd.concat(frames, ignore_index=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    return panel_of(raw.drop_duplicates(["series_id", "timestamp"], keep="last"), freq)


def baseline_scores(panel: pd.DataFrame, report: dict) -> dict[str, dict[str, float]]:
    """Seasonal naive, AutoETS and AutoTheta on the report's cuts (the dev-panel benchmark's own fitting)."""
    results = {}
    for name in ("seasonal naive", "AutoETS", "AutoTheta"):
        scores, seconds = [], 0.0
        for origin in report["origins"]:
            cut = pd.Timestamp(origin).tz_convert(None)
            train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
            started = time.perf_counter()
            forecast = fit_predict(name, train, report["horizon"], report["season"], report["frequency"])
            seconds += time.perf_counter() - started
            scores += score(forecast, train, test, report["season"])
        results[name] = {"mase": float(np.nanmean([s["mase"] for s in scores])),
                         "smape": float(np.mean([s["smape"] for s in scores])),
                         "coverage": float(np.mean([s["coverage"] for s in scores])), "seconds": seconds}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--origins", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=None, help="default: by frequency (14 daily, 24 hourly)")
    parser.add_argument("--lstm-report", type=Path, help="an existing `lstm-forecast backtest` JSON report")
    args = parser.parse_args()
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.lstm_report:
            report, _ = json.loads(args.lstm_report.read_text()), None
        else:
            report, _ = run_lstm_backtest(args, Path(tmp))
    lstm = report["summary"]
    panel = load_panel(Path(report.get("input") or args.input), report["frequency"])
    baselines = baseline_scores(panel, report)
    print(f"\nData: {report.get('input')}; {len(report['origins'])} origins "
          f"({', '.join(o[:10] for o in report['origins'])}); H={report['horizon']}, m={report['season']}\n")
    header = f"{'method':<16}{'MASE':>8}{'sMAPE':>8}{'cover80':>9}{'train s':>9}{'MASE/LSTM':>11}"
    print(header)
    print("-" * len(header))
    rows = [("LSTM (ours)", lstm["mase"], lstm["smape"], lstm["coverage"], lstm["train_seconds"])]
    rows += [(name, r["mase"], r["smape"], r["coverage"], r["seconds"]) for name, r in baselines.items()]
    for name, m, s, c, secs in rows:
        print(f"{name:<16}{m:>8.4f}{s:>8.2f}{c:>9.3f}{secs:>9.1f}{m / lstm['mase']:>11.3f}")
    beaten = [name for name, r in baselines.items() if lstm["mase"] < r["mase"]]
    print(f"\nLSTM beats on MASE: {', '.join(beaten) or 'none'}; 80% coverage in [0.70, 0.90]: "
          f"{'yes' if 0.70 <= lstm['coverage'] <= 0.90 else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
