"""Per-stage throughput and growth at 10, 100 and 1,000 series, with a plain reference per stage.

    .venv/bin/python benchmarks/stages.py [--sizes 10 100 1000] [--days 365] [--freq D] [--train-epochs 1]

Each size gets a fresh seeded synthetic panel (benchmarks/synthetic.py) and a fresh data dir, and every
stage's pure function runs once, timed, followed by the process's peak resident memory so far (it only
grows, so read it as "peak up to this stage"). A small warm-up size runs first and is not reported (it pays
the one-off imports and graph building). References measured in the same run:
- ingest:   the same file to typed Parquet, bare: `pandas.read_csv`, `pandas.to_datetime` of the timestamps,
            `pyarrow.parquet.write_table` (no archive, manifest, lineage, raw-text keeping or atomic rename);
- windows:  `sliding_window_view` + `pyarrow.parquet.write_table` of the materialised windows;
- train:    `model.fit` on materialised numpy arrays of the same windows (the epoch's sample), same model,
            batch and validation data (the same sample of validation windows);
- explain:  one plain forward pass (`model.predict`) over as many windows as the explanation scores
            (its sample times the shuffled and occluded variants);
- accuracy: an earlier publication joined to the observations by a bare `DataFrame.merge`, written with
            `pyarrow.parquet.write_table` and `DataFrame.to_sql` (no scale, naive reference, restatement check);
- publish:  the same rows to both stores, bare: `pyarrow.parquet.write_table` and `DataFrame.to_sql` into the
            same database (no transaction spanning both, no delete of an earlier run, no atomic rename).
Growth is each stage's time divided by the 10-series time, next to the data growth (series ratio).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import resource
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from synthetic import synthetic_panel  # noqa: E402


def measure(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - started
    return result, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_size(n_series: int, days: int, freq: str, epochs: int, workdir: Path) -> list[dict]:
    from forecasting.accuracy import score_publications
    from forecasting.explain import explain
    from forecasting.forecast import forecast
    from forecasting.frequency import defaults_for
    from forecasting.gapfill import gapfill
    from forecasting.model.config import ModelConfig
    from forecasting.model.training import calibrate, fit_model
    from forecasting.model.version import ModelVersion
    from forecasting.settings import load_settings
    from forecasting.validation import validate
    from forecasting.windows import TRAIN, WindowSource, plan_windows, resolve_sizes
    from stores.archive import ingest, read_series_store
    from stores.accuracy import save_scores
    from stores.forecasts import publish_forecasts_atomically

    inbox, store = workdir / f"inbox-{n_series}", workdir / f"store-{n_series}"
    inbox.mkdir()
    synthetic_panel(n_series, freq, days).to_csv(inbox / "panel.csv", index=False)
    settings = load_settings(data_dir=store, max_epochs=epochs)
    lookback, horizon = resolve_sizes(freq, None, None)
    rows = []

    def record(stage, unit, count, seconds, peak, reference_seconds=None):
        rows.append({"series": n_series, "stage": stage, "unit": unit, "count": count, "seconds": seconds,
                     "per_s": count / seconds, "peak_mb": peak / 1e6,
                     "reference_per_s": count / reference_seconds if reference_seconds else None})

    summary, seconds, peak = measure(ingest, inbox, store)
    _, ref_seconds, _ = measure(_reference_ingest, inbox / "panel.csv", workdir / f"ingest-{n_series}.parquet")
    record("ingest", "rows", summary.rows_new, seconds, peak, ref_seconds)
    store_rows = read_series_store(store)
    result, seconds, peak = measure(validate, store_rows, None, settings.max_staleness)
    record("validate (GX)", "rows", len(store_rows), seconds, peak)
    filled, seconds, peak = measure(gapfill, result.valid, freq, "linear", settings.max_gap)
    record("gap-fill", "rows", len(result.valid), seconds, peak)
    clean = filled.clean
    plan, seconds, peak = measure(plan_windows, clean, freq, lookback, horizon, settings.val_fraction)
    reference = _reference_windows(clean, lookback, horizon, workdir / f"ref-{n_series}.parquet")
    record("windows", "windows", len(plan.index), seconds, peak, reference)
    source = WindowSource.from_plan(plan, lookback, horizon)
    config = ModelConfig.from_settings(settings, lookback=lookback, horizon=horizon, features=plan.features,
                                       frequency=freq)
    (model, facts), seconds, peak = measure(fit_model, config, source, max_epochs=epochs, patience=epochs)
    reference = _reference_fit(config, source, epochs)
    # Both train on the same windows: the epoch's seeded sample of at most max_windows_per_epoch.
    trained = min(source.count(TRAIN), config.max_windows_per_epoch) * facts["epochs_run"]
    record("train", "windows", trained, facts["train_seconds"], peak, reference)
    interval = calibrate(model, source, settings.interval_level)
    champion = ModelVersion("bench", model, plan.scalers, {"config": config.as_dict(), "interval": interval})
    explained, seconds, peak = measure(explain, model, interval["correction"], plan.scalers, plan.series, plan.index,
                                       plan.features, lookback, horizon, config.quantiles, freq)
    passes = explained.windows * (1 + len(explained.channels) * explained.repeats + len(explained.lookback_blocks))
    record("explain", "windows", passes, seconds, peak, _reference_predict(model, source, passes))
    earlier = _earlier_publication(forecast, champion, clean, freq, horizon)

    def score_and_save():
        return save_scores(store, settings.database_url, score_publications(earlier, clean, defaults_for(freq).season))

    counts, seconds, peak = measure(score_and_save)
    _, ref_seconds, _ = measure(_reference_accuracy, earlier, clean, workdir / f"acc-{n_series}.parquet",
                                settings.database_url)
    record("accuracy", "points", counts["new"], seconds, peak, ref_seconds)
    forecasts, seconds, peak = measure(forecast, champion, clean, freq, horizon)
    record("predict", "series", forecasts["series_id"].nunique(), seconds, peak)
    forecasts["run_id"] = "bench"
    run_date = clean["timestamp"].max().date()
    written, seconds, peak = measure(publish_forecasts_atomically, forecasts, run_date, store, settings.database_url)
    _, ref_seconds, _ = measure(_reference_publish, forecasts, workdir / f"pub-{n_series}.parquet",
                                settings.database_url)
    record("publish", "rows", written, seconds, peak, ref_seconds)
    return rows


def _earlier_publication(forecast, champion, clean: pd.DataFrame, freq: str, horizon: int) -> pd.DataFrame:
    """What a run `horizon` periods ago would have published: every point of it is observed now."""
    stamps = np.sort(clean["timestamp"].unique())
    past = clean[clean["timestamp"] <= stamps[-horizon - 1]]
    rows = forecast(champion, past, freq, horizon)
    return rows.assign(run_id="bench", run_date=pd.Timestamp(stamps[-horizon - 1]).date().isoformat())


def _reference_predict(model, source, windows: int) -> float:
    from forecasting.windows import VALIDATION

    starts = np.resize(source.starts[VALIDATION], windows)
    x, _ = source.window(starts)
    started = time.perf_counter()
    model.predict(x, batch_size=16384, verbose=0)
    return time.perf_counter() - started


def _reference_accuracy(earlier: pd.DataFrame, clean: pd.DataFrame, out: Path, database_url: str) -> None:
    joined = earlier.merge(clean[["series_id", "timestamp", "value"]], on=["series_id", "timestamp"])
    joined["abs_error"] = (joined["value"] - joined["yhat"]).abs()
    _bare_write(joined, out, "reference_accuracy", database_url)


def _reference_ingest(csv: Path, out: Path) -> None:
    frame = pd.read_csv(csv)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out)


def _reference_publish(forecasts: pd.DataFrame, out: Path, database_url: str) -> None:
    _bare_write(forecasts, out, "reference_forecasts", database_url)


def _bare_write(frame: pd.DataFrame, out: Path, table: str, database_url: str) -> None:
    """The references' writes: one Parquet file and one `to_sql`, nothing else."""
    import sqlalchemy as sa

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out)
    engine = sa.create_engine(database_url)
    try:
        frame.to_sql(table, engine, if_exists="replace", index=False)
    finally:
        engine.dispose()


def _reference_windows(clean: pd.DataFrame, lookback: int, horizon: int, out: Path) -> float:
    started = time.perf_counter()
    views = [np.lib.stride_tricks.sliding_window_view(g["value"].to_numpy("float32"), lookback + horizon)
             for _, g in clean.groupby("series_id")]
    windows = np.concatenate(views)
    pq.write_table(pa.table({"w": pa.FixedSizeListArray.from_arrays(windows.ravel(), lookback + horizon)}), out)
    return time.perf_counter() - started


def _reference_fit(config, source, epochs: int) -> float:
    from forecasting.model.dataset import WindowDataset
    from forecasting.model.devices import seed_everything
    from forecasting.windows import TRAIN, VALIDATION

    sample = WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=config.seed,
                           max_windows=config.max_windows_per_epoch).order  # the windows fit_model trains on
    x, y = source.window(source.starts[TRAIN][np.sort(sample)])
    scored = WindowDataset(source, VALIDATION, config.batch_size, shuffle=False, seed=config.seed,
                           max_windows=config.max_val_windows).order  # the validation windows fit_model scores
    validation = source.window(source.starts[VALIDATION][scored])
    seed_everything(config.seed)
    model = config.build()
    started = time.perf_counter()
    model.fit(x, y, batch_size=config.batch_size, epochs=epochs, shuffle=True, verbose=0, validation_data=validation)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--freq", choices=["h", "D"], default="D")
    parser.add_argument("--train-epochs", type=int, default=1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm_up = Path(tmp) / "warm-up"
        warm_up.mkdir()
        run_size(3, 120, args.freq, 1, warm_up)  # pays the imports and graph building; not reported
        for size in args.sizes:
            rows += run_size(size, args.days, args.freq, args.train_epochs, Path(tmp))
            print(f"measured {size} series", file=sys.stderr)
    table = pd.DataFrame(rows)
    print(f"\nSynthetic {args.freq} panels, {args.days} days; one run per size\n")
    print(f"{'series':>7} {'stage':<15}{'count':>10} {'unit':<8}{'seconds':>9}{'per s':>12}{'reference/s':>13}"
          f"{'ours/ref':>9}{'peak RSS MB':>12}")
    for row in table.itertuples():
        reference = f"{row.reference_per_s:>13.0f}{row.per_s / row.reference_per_s:>9.2f}" if row.reference_per_s \
            else f"{'-':>13}{'-':>9}"
        print(f"{row.series:>7} {row.stage:<15}{row.count:>10} {row.unit:<8}{row.seconds:>9.3f}{row.per_s:>12.0f}"
              f"{reference}{row.peak_mb:>12.0f}")
    base = table[table["series"] == min(args.sizes)].set_index("stage")["seconds"]
    print("\nGrowth of time per stage against the smallest size (linear growth = the series ratio):")
    for size in args.sizes:
        part = table[table["series"] == size].set_index("stage")["seconds"]
        ratios = "  ".join(f"{stage} {part[stage] / base[stage]:.1f}x" for stage in part.index)
        print(f"  {size:>5} series ({size / min(args.sizes):.0f}x data): {ratios}")


if __name__ == "__main__":
    main()
