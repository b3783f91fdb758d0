"""Baseline benchmark: the LSTM backtest against seasonal naive, AutoETS and AutoTheta on the same cuts.

Runs in its own environment (`make bench-baselines` builds .venv-bench from benchmarks/requirements-bench.lock),
because statsforecast requires pandas < 3 while the pipeline pins pandas 3. It runs
`lstm-forecast backtest` from the project's environment (or reads a report given with --lstm-report),
takes the origins, horizon and season from that report, fits the statsforecast baselines on exactly the
same cuts, scores everything with the project's own metric code (tasks/metrics.py), and prints a table
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
from tasks.metrics import coverage, mase, smape  # noqa: E402 - numpy-only module shared with the pipeline

PANDAS_FREQ = {"h": "h", "D": "D", "7D": "7D", "MS": "MS", "ME": "ME", "min": "min"}


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
    panel = pd.DataFrame({"unique_id": raw["series_id"].astype(str),
                          "ds": pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601").dt.tz_convert(None),
                          "y": pd.to_numeric(raw["value"], errors="coerce")}).dropna()
    panel = panel.drop_duplicates(["unique_id", "ds"], keep="last")
    regular = []
    for uid, group in panel.groupby("unique_id"):
        grid = pd.date_range(group["ds"].min(), group["ds"].max(), freq=PANDAS_FREQ.get(freq, freq))
        filled = group.set_index("ds")["y"].reindex(grid).interpolate(limit_direction="both")
        regular.append(pd.DataFrame({"unique_id": uid, "ds": grid, "y": filled.to_numpy()}))
    return pd.concat(regular, ignore_index=True)


def baseline_scores(panel: pd.DataFrame, report: dict) -> dict[str, dict[str, float]]:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    horizon, season, freq = report["horizon"], report["season"], report["frequency"]
    models = {"seasonal naive": SeasonalNaive(season_length=season), "AutoETS": AutoETS(season_length=season),
              "AutoTheta": AutoTheta(season_length=season)}
    results: dict[str, dict[str, list]] = {name: {"mase": [], "smape": [], "coverage": [], "seconds": []}
                                           for name in models}
    for origin in report["origins"]:
        cut = pd.Timestamp(origin).tz_convert(None)
        train = panel[panel["ds"] <= cut]
        test = panel[(panel["ds"] > cut)]
        for name, model in models.items():
            started = time.perf_counter()
            forecast = StatsForecast(models=[model], freq=PANDAS_FREQ.get(freq, freq), n_jobs=1).forecast(
                df=train, h=horizon, level=[80])
            results[name]["seconds"].append(time.perf_counter() - started)
            column = [c for c in forecast.columns if c not in ("unique_id", "ds") and "-lo-" not in c
                      and "-hi-" not in c][0]
            merged = forecast.merge(test, on=["unique_id", "ds"])
            for uid, group in merged.groupby("unique_id"):
                history = train.loc[train["unique_id"] == uid, "y"].to_numpy()
                actual = group["y"].to_numpy()
                results[name]["mase"].append(mase(actual, group[column].to_numpy(), history, season))
                results[name]["smape"].append(smape(actual, group[column].to_numpy()))
                results[name]["coverage"].append(coverage(actual, group[f"{column}-lo-80"].to_numpy(),
                                                          group[f"{column}-hi-80"].to_numpy()))
    return {name: {"mase": float(np.nanmean(r["mase"])), "smape": float(np.mean(r["smape"])),
                   "coverage": float(np.mean(r["coverage"])), "seconds": float(np.sum(r["seconds"]))}
            for name, r in results.items()}


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
