"""The project's backtest on every run of the development panel, in one process (the project's environment).

Each run goes through the pipeline's own parsing, validation (Great Expectations suite included), gap-fill
and `forecasting.backtest.backtest` with default settings (3 rolling origins), exactly the modelling path of
`lstm-forecast backtest`, without starting a Prefect flow per run. Writes one JSON report per run (the
CLI's report format) into --out, which `benchmarks/dev_panel.py` scores against the peers.

    .venv/bin/python benchmarks/dev_backtest.py --out /tmp/dev [--datasets wikipedia m4_daily] [--set units=64]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import devpanel  # noqa: E402


def validated(rows, name: str, settings):
    from forecasting.columns import INGEST_SEQ
    from forecasting.columns import SOURCE_FILE
    from forecasting.parsing import read_raw_file
    from forecasting.validation import validate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.csv"
        rows.to_csv(path, index=False)
        store, _ = read_raw_file(path)
    store[SOURCE_FILE], store[INGEST_SEQ] = name, 0
    result = validate(store, None, settings.max_staleness, max_robust_z=settings.max_robust_z)
    return result.valid, result.facts["panel_frequency"]


def prefilled_backtest(gapped, complete, run: str, freq: str, settings, origins: int, log, actuals):
    """The backtest of `gapped` rows that a provider filled before each cut (devpanel.prefilled), scored
    against `actuals`. Each origin gets its own fill from the rows up to its cut: a fill of the whole run
    would draw a gap that spans a cut from the value after it, which no one had at the cut (a 17-week
    outage of an 80-week M4 weekly series ran 3 weeks past one cut and 11 past the next)."""
    import pandas as pd

    from forecasting.backtest import BacktestResult, backtest, rolling_origins
    from forecasting.windows import resolve_sizes

    _, horizon = resolve_sizes(freq, settings.lookback, settings.horizon)
    stamps = {name: pd.to_datetime(rows["timestamp"], utc=True, format="ISO8601")
              for name, rows in (("gapped", gapped), ("complete", complete))}
    cuts = rolling_origins(stamps["complete"].max(), freq, horizon, origins)
    parts = []
    for cut, end in zip(cuts, [*cuts[1:], stamps["complete"].max()]):
        # The history as filled at the cut, then the complete rows of the horizon after it: they set the
        # backtest's single origin at `cut` (its last timestamp less one horizon) and are never trained on.
        history = devpanel.prefilled(gapped[stamps["gapped"] <= cut], complete[stamps["complete"] <= cut])
        after = complete[(stamps["complete"] > cut) & (stamps["complete"] <= end)]
        valid, _ = validated(pd.concat([history, after], ignore_index=True), run, settings)
        parts.append(backtest(valid, freq, settings, origins=1, log=log, actuals=actuals))
        if parts[-1].origins != [cut]:
            raise SystemExit(f"{run}: the prefilled backtest's origin {parts[-1].origins} is not its cut {cut}")
    return BacktestResult(pd.concat([p.per_series for p in parts], ignore_index=True), cuts, horizon,
                          parts[-1].lookback, parts[-1].season, sum(p.train_seconds for p in parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", nargs="*", help="default: all")
    parser.add_argument("--runs", nargs="*", help="only these runs (e.g. m4_daily-3); default: all")
    parser.add_argument("--origins", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="settings to override")
    parser.add_argument("--gaps", type=int, metavar="SEED", help="knock seeded outages and single rows out of "
                        "each series first (devpanel.with_gaps), as a raw feed has them; forecasts are still "
                        "scored against the complete rows")
    parser.add_argument("--prefill", action="store_true", help="with --gaps: hand the gapped rows over already "
                        "filled by linear interpolation (devpanel.prefilled) before each cut, from the rows up to "
                        "it, as issue 12's filled cuts were: the baseline the raw-gap runs are held to")
    args = parser.parse_args()
    if args.prefill and args.gaps is None:
        parser.error("--prefill fills the gaps --gaps SEED knocks out: give both")
    from forecasting.backtest import backtest
    from forecasting.settings import Settings

    overrides = dict(item.split("=", 1) for item in args.set)
    settings = Settings(data_dir=str(args.out / "store"), **overrides)
    args.out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("dev_backtest")
    log.setLevel(logging.INFO)  # each origin's decision (Prefect's logging configuration prints it)
    for dataset in devpanel.by_name(args.datasets):
        for run, rows in devpanel.runs(dataset):
            if args.runs and run not in args.runs:
                continue
            actuals = complete = None
            if args.gaps is not None:  # scored against the complete rows: the same points as without gaps
                actuals, _ = validated(rows, run, settings)
                complete, rows = rows, devpanel.with_gaps(rows, seed=args.gaps)
            valid, freq = validated(rows, run, settings)
            started, started_cpu = time.perf_counter(), time.process_time()
            if args.prefill:
                result = prefilled_backtest(rows, complete, run, freq, settings, args.origins, log, actuals)
            else:
                result = backtest(valid, freq, settings, origins=args.origins, log=log, actuals=actuals)
            seconds, cpu = time.perf_counter() - started, time.process_time() - started_cpu
            summary = result.summary()
            report = {**result.as_dict(), "frequency": freq, "dataset": dataset.name, "run": run,
                      "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                      "settings_overrides": overrides, "gaps_seed": args.gaps,
                      "prefilled": args.prefill}
            (args.out / f"{run}.json").write_text(json.dumps(report, default=str))
            print(f"{run:<18} series {valid['series_id'].nunique():>3}  MASE {summary['mase']:.4f}  "
                  f"sMAPE {summary['smape']:6.2f}  cover {summary['coverage']:.3f}  {seconds:7.1f} s  {cpu:7.1f} s CPU",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
