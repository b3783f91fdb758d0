"""The development-panel benchmark: the project's backtest against every peer, dataset by dataset.

Two steps, two environments (statsforecast and NeuralForecast need pandas < 3, the pipeline pins pandas 3):

    .venv/bin/python benchmarks/dev_backtest.py --out /tmp/dev            # ours: 3 origins, defaults
    .venv-bench/bin/python benchmarks/dev_panel.py --reports /tmp/dev     # peers on the same cuts, the table

(`make bench-dev` does both.) Peers, fitted on exactly the cuts of our reports (same origins, horizon,
season) and scored by the project's own metric code (forecasting/metrics.py): statsforecast SeasonalNaive,
AutoETS, AutoTheta, MSTL (seasons: day+week for sub-daily data, week+year for daily series of 2+ years,
else the one season), NeuralForecast LSTM and NHITS (`h=H, input_size=4m daily / 7m sub-daily / 2m else,
max_steps=300, scaler_type="standard", random_seed=0`, on the CPU). Peer results are cached per run and
cut in --cache (they do not change when our model does); delete it to refit them.

Per dataset: MASE (m = the report's season), sMAPE, 80% coverage, seconds (ours: the whole backtest of
all origins, training and forecasting; peers: fit+predict of all origins), and ours / best peer.
Overall: the mean over datasets of each method's MASE, and of the best peer per dataset.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import devpanel  # noqa: E402
from forecasting.metrics import coverage, mase, smape  # noqa: E402 - numpy-only module shared with the pipeline

STATS = ("seasonal naive", "AutoETS", "AutoTheta", "MSTL")
NEURAL = ("NF LSTM", "NF NHITS")
PEERS = STATS + NEURAL


def pandas_freq(freq: str) -> str:
    return {"ME": "ME", "MS": "MS"}.get(freq, freq)


def panel_of(rows: pd.DataFrame, freq: str) -> pd.DataFrame:
    """unique_id, ds, y on each series' regular grid (the files have no gaps; linear fill just in case)."""
    frame = pd.DataFrame({"unique_id": rows["series_id"].astype(str),
                          "ds": pd.to_datetime(rows["timestamp"], utc=True, format="ISO8601").dt.tz_convert(None),
                          "y": pd.to_numeric(rows["value"], errors="coerce")}).dropna()
    parts = []
    for uid, group in frame.groupby("unique_id"):
        grid = pd.date_range(group["ds"].min(), group["ds"].max(), freq=pandas_freq(freq))
        filled = group.set_index("ds")["y"].reindex(grid).interpolate(limit_direction="both")
        parts.append(pd.DataFrame({"unique_id": uid, "ds": grid, "y": filled.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def mstl_seasons(freq: str, season: int, history_length: int) -> list[int]:
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(pandas_freq(freq))) if freq not in ("MS", "ME") else None
    if step is not None and step < pd.Timedelta(days=1) and season > 1:
        return [season, 7 * season]
    if step == pd.Timedelta(days=1) and history_length >= 2 * 365 + 28:
        return [7, 365]
    return [max(season, 2)]


def neural_input_size(freq: str, season: int) -> int:
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(pandas_freq(freq))) if freq not in ("MS", "ME") else None
    if step is not None and step < pd.Timedelta(days=1):
        return 7 * season
    return 4 * season if step == pd.Timedelta(days=1) else 2 * season


def fit_predict(name: str, train: pd.DataFrame, horizon: int, season: int, freq: str) -> pd.DataFrame:
    """Forecast frame (unique_id, ds, point[, lo, hi]) of one peer; columns renamed to point/lo/hi."""
    if name in STATS:
        from statsforecast import StatsForecast
        from statsforecast.models import MSTL, AutoETS, AutoTheta, SeasonalNaive

        shortest = int(train.groupby("unique_id").size().min())
        model = {"seasonal naive": lambda: SeasonalNaive(season_length=season),
                 "AutoETS": lambda: AutoETS(season_length=season),
                 "AutoTheta": lambda: AutoTheta(season_length=season),
                 "MSTL": lambda: MSTL(season_length=mstl_seasons(freq, season, shortest))}[name]()
        out = StatsForecast(models=[model], freq=pandas_freq(freq), n_jobs=1).forecast(df=train, h=horizon, level=[80])
        column = [c for c in out.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
        return out.rename(columns={column: "point", f"{column}-lo-80": "lo", f"{column}-hi-80": "hi"})
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM, NHITS

    shortest = int(train.groupby("unique_id").size().min())
    input_size = min(neural_input_size(freq, season), max(shortest - horizon, 2 * horizon))
    cls = LSTM if name == "NF LSTM" else NHITS
    model = cls(h=horizon, input_size=input_size, max_steps=300, scaler_type="standard", random_seed=0,
                enable_progress_bar=False, enable_model_summary=False, logger=False, accelerator="cpu")
    nf = NeuralForecast(models=[model], freq=pandas_freq(freq))
    nf.fit(df=train)
    out = nf.predict()
    return out.rename(columns={cls.__name__: "point"})


def score(forecast: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, season: int) -> list[dict]:
    merged = forecast.merge(test, on=["unique_id", "ds"])
    rows = []
    for uid, group in merged.groupby("unique_id"):
        history = train.loc[train["unique_id"] == uid, "y"].to_numpy()
        actual, point = group["y"].to_numpy(), group["point"].to_numpy()
        rows.append({"series_id": uid, "mase": mase(actual, point, history, season), "smape": smape(actual, point),
                     "coverage": coverage(actual, group["lo"].to_numpy(), group["hi"].to_numpy())
                     if "lo" in group else float("nan")})
    return rows


def peer_results(report: dict, panel: pd.DataFrame, cache: dict, names: tuple[str, ...],
                 cached_only: bool = False) -> dict[str, dict]:
    """Per peer: per-series scores over all origins and total seconds; computed once per (run, cut, H, m)."""
    horizon, season, freq = report["horizon"], report["season"], report["frequency"]
    out = {}
    for name in names:
        key = f"{report['run']}|{name}|{','.join(report['origins'])}|{horizon}|{season}"
        if key not in cache and cached_only:
            continue
        if key not in cache:
            scores, seconds, cpu = [], 0.0, 0.0
            for origin in report["origins"]:
                cut = pd.Timestamp(origin).tz_convert(None)
                train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
                started, started_cpu = time.perf_counter(), time.process_time()
                forecast = fit_predict(name, train, horizon, season, freq)
                seconds += time.perf_counter() - started
                cpu += time.process_time() - started_cpu
                scores += score(forecast, train, test, season)
            cache[key] = {"scores": scores, "seconds": seconds, "cpu_seconds": cpu}
            print(f"  {report['run']:<18} {name:<15} MASE {np.nanmean([s['mase'] for s in scores]):.4f} "
                  f"{seconds:7.1f} s wall {cpu:7.1f} s CPU", flush=True)
        out[name] = cache[key]
    return out


def table(rows: list[dict], methods: list[str]) -> str:
    """Markdown table: per dataset, each method's MASE (and seconds), best peer, ours/best peer."""
    head = "| dataset | series x origins | " + " | ".join(methods) + " | best peer | ours / best peer |"
    lines = [head, "|" + "---|" * (len(methods) + 4)]
    for row in rows:
        cells = [f"{row['mase'][m]:.3f}" for m in methods]
        lines.append(f"| {row['dataset']} | {row['points']} | " + " | ".join(cells) +
                     f" | {row['best']} {row['mase'][row['best']]:.3f} | **{row['ratio']:.3f}** |")
    overall = {m: np.mean([r["mase"][m] for r in rows]) for m in methods}
    best = np.mean([r["mase"][r["best"]] for r in rows])
    lines.append("| **mean of datasets** | | " + " | ".join(f"{overall[m]:.3f}" for m in methods) +
                 f" | best per dataset {best:.3f} | **{overall['ours'] / best:.3f}** |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, required=True, help="folder of dev_backtest.py reports")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "results" / "dev_panel_peers.json")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), help=f"default: all of {PEERS}")
    parser.add_argument("--output", type=Path, help="also write the tables (markdown) here")
    parser.add_argument("--cached-only", action="store_true",
                        help="fit no peer: show the cached results, 'n/a' where a peer has none for a run")
    args = parser.parse_args()
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    peers = tuple(p for p in PEERS if p in args.peers)
    reports = {json.loads(p.read_text())["run"]: json.loads(p.read_text()) for p in sorted(args.reports.glob("*.json"))}
    rows, seconds_rows = [], []
    for dataset in devpanel.DATASETS:
        runs = [(run, rows_) for run, rows_ in devpanel.runs(dataset) if run in reports]
        if not runs:
            continue
        per_method: dict[str, list[dict]] = {m: [] for m in ("ours", *peers)}
        seconds = {m: 0.0 for m in ("ours", *peers)}
        cpu = {m: 0.0 for m in ("ours", *peers)}
        for run, raw in runs:
            report = reports[run]
            per_method["ours"] += report["per_series"]
            seconds["ours"] += report["seconds"]
            cpu["ours"] += report.get("cpu_seconds", float("nan"))
            panel = panel_of(raw, report["frequency"])
            for name, result in peer_results(report, panel, cache, peers, args.cached_only).items():
                per_method[name] += result["scores"]
                seconds[name] += result["seconds"]
                cpu[name] += result.get("cpu_seconds", float("nan"))
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.cache.write_text(json.dumps(cache, indent=0))
        complete = [m for m in peers if len(per_method[m]) == len(per_method["ours"])]  # every run scored
        mean = {m: float(np.nanmean([s["mase"] for s in per_method[m]])) if m in ("ours", *complete)
                else float("nan") for m in ("ours", *peers)}
        if not complete:
            print(f"{dataset.name}: no peer has results for every run yet; left out")
            continue
        best = min(complete, key=lambda m: mean[m])
        rows.append({"dataset": dataset.name, "points": len(per_method["ours"]), "mase": mean, "best": best,
                     "ratio": mean["ours"] / mean[best],
                     "smape": {m: float(np.nanmean([s["smape"] for s in v])) if v else float("nan")
                               for m, v in per_method.items()},
                     "coverage": {m: float(np.nanmean([s["coverage"] for s in v])) if v else float("nan")
                                  for m, v in per_method.items()},
                     "seconds": {m: seconds[m] if m == "ours" or m in complete else float("nan") for m in seconds},
                     "cpu": cpu})
    methods = ["ours", *peers]
    text = ["## MASE (mean over series and origins; m = 7 daily, 24 hourly, 48 half-hourly, 52 weekly, 12 monthly)",
            "", table(rows, methods), "",
            "## sMAPE / 80% coverage / seconds wall / seconds CPU (all origins of all runs)", "",
            "| dataset | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
    for row in rows:
        text.append(f"| {row['dataset']} | " + " | ".join(
            f"{row['smape'][m]:.2f} / {row['coverage'][m]:.2f} / {row['seconds'][m]:.0f} / {row['cpu'][m]:.0f}"
            for m in methods) + " |")
    cover = np.mean([r["coverage"]["ours"] for r in rows])

    def total(method: str, key: str) -> float:
        return float(sum(r[key].get(method, np.nan) for r in rows))

    text += ["", f"Ours: mean 80% coverage {cover:.3f}; {total('ours', 'seconds'):.0f} s wall / "
             f"{total('ours', 'cpu'):.0f} s CPU in all against NF LSTM's {total('NF LSTM', 'seconds'):.0f} s / "
             f"{total('NF LSTM', 'cpu'):.0f} s (CPU ratio {total('ours', 'cpu') / total('NF LSTM', 'cpu'):.2f}); "
             f"datasets where ours beats the best peer: {sum(r['ratio'] < 1 for r in rows)} of {len(rows)}."]
    print("\n".join(text))
    if args.output:
        args.output.write_text("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
