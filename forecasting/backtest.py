"""Rolling-origin evaluation of the whole modelling path, as the daily flow would have run it.

For K origins, cut_k = last timestamp - k*H periods (k = K..1): the validated rows up to the cut are
gap-filled, windowed, used to train and calibrate a model exactly as the daily flow does, and the H
steps after the cut are forecast as a first daily run would publish them (the model where it beat
seasonal naive on the series' holdout, seasonal naive elsewhere; seasonal naive everywhere when the
model is not promoted) and scored against the observed values (never imputed ones).
Metrics per series and origin: MASE (scale: in-sample seasonal-naive MAE with lag m = the frequency's
season, 7 daily, 24 hourly), sMAPE, and the coverage of the prediction interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forecasting.columns import MODEL_VERSION, SERIES_ID, TIMESTAMP, VALUE, YHAT, YHAT_LOWER, YHAT_UPPER
from forecasting.forecast import forecast, published_by
from forecasting.frequency import defaults_for, periods_since
from forecasting.gapfill import gapfill
from forecasting.metrics import coverage, mase, smape
from forecasting.model.config import ModelConfig
from forecasting.model.training import calibrate, fit_model
from forecasting.model.version import ModelVersion
from forecasting.promotion import challenge
from forecasting.settings import Settings
from forecasting.validation import staleness_limit
from forecasting.windows import TRAIN, VALIDATION, WindowSource, longest_length, plan_windows, resolve_sizes


@dataclass
class BacktestResult:
    per_series: pd.DataFrame  # series_id, origin, mase, smape, coverage, model_version
    origins: list[pd.Timestamp]
    horizon: int
    lookback: int
    season: int
    train_seconds: float

    def summary(self) -> dict[str, float]:
        """Means over series and origins; NaN where nothing could be scored (no observed point after a cut)."""
        def mean(metric: str) -> float:
            return float(self.per_series[metric].mean()) if metric in self.per_series else float("nan")

        return {"mase": mean("mase"), "smape": mean("smape"), "coverage": mean("coverage"),
                "train_seconds": round(self.train_seconds, 2), "series_origins": int(len(self.per_series))}

    def as_dict(self) -> dict[str, Any]:
        rows = self.per_series.assign(origin=self.per_series["origin"].map(pd.Timestamp.isoformat))
        return {"horizon": self.horizon, "lookback": self.lookback, "season": self.season,
                "origins": [o.isoformat() for o in self.origins], "summary": self.summary(),
                "per_series": rows.to_dict("records")}


def rolling_origins(last: pd.Timestamp, freq: str, horizon: int, count: int) -> list[pd.Timestamp]:
    """cut_k = last - k*horizon periods, k = count..1 (oldest first). (scikit-learn's TimeSeriesSplit gives
    the same cuts but refuses a single fold, which `--origins 1` asks for.)"""
    grid = pd.date_range(end=last, periods=count * horizon + 1, freq=freq)
    return [grid[len(grid) - 1 - k * horizon] for k in range(count, 0, -1)]


def backtest(valid: pd.DataFrame, freq: str, settings: Settings, origins: int = 3, log: Any = None,
             actuals: pd.DataFrame | None = None) -> BacktestResult:
    """Train and score at each rolling origin; `valid` is validated long-format data (gaps allowed).

    actuals: the rows forecasts are scored against, and whose history scales MASE (default: `valid`). A
    benchmark that knocks rows out of complete data passes the complete rows, so forecasts from the gapped
    feed are scored on the same points, on the same scale, as forecasts from the complete one."""
    lookback, horizon = resolve_sizes(freq, settings.lookback, settings.horizon)
    season = defaults_for(freq).season
    cuts = rolling_origins(valid[TIMESTAMP].max(), freq, horizon, origins)
    scores, train_seconds = [], 0.0
    for number, cut in enumerate(cuts, start=1):
        history = valid[valid[TIMESTAMP] <= cut]
        # As the run at this cut would: series whose last point lags it by over max_staleness are quarantined.
        last_seen = history.groupby(SERIES_ID)[TIMESTAMP].max()
        stale = last_seen.index[periods_since(last_seen, cut, freq) > staleness_limit(settings.max_staleness, freq)]
        history = history[~history[SERIES_ID].isin(stale)]
        if history.empty:
            continue
        scored = valid if actuals is None else actuals
        truth = scored[scored[TIMESTAMP] > cut]
        clean = gapfill(history, freq, settings.fill_method, settings.max_gap).clean
        longest = longest_length(clean)
        lookback, _ = resolve_sizes(freq, settings.lookback, horizon, longest)  # as the run at this cut would
        candidate, epochs, outcome = None, 0, "no training windows: seasonal naive for every series"
        plan = plan_windows(clean, freq, lookback, horizon, settings.val_fraction, settings.target_transform) \
            if longest is None or longest >= lookback else None  # None: raises "no series is left"
        source = WindowSource.from_plan(plan, lookback, horizon) if plan is not None else None
        # Without training and validation windows every series gets the fallback, as the daily run does.
        if source is not None and source.count(TRAIN) and source.count(VALIDATION):
            config = ModelConfig.from_settings(settings, lookback=lookback, horizon=horizon,
                                               features=plan.features, frequency=freq,
                                               series=int(plan.series[SERIES_ID].nunique()))
            started = time.perf_counter()
            model, facts = fit_model(config, source, max_epochs=settings.max_epochs, patience=settings.patience,
                                     lr_patience=settings.lr_patience, min_improvement=settings.min_improvement)
            train_seconds += time.perf_counter() - started
            interval = calibrate(model, source, settings.interval_level)
            # What a first daily run on this history would publish: the model where it beat seasonal naive
            # on the series' holdout, nothing of it when it was not promoted at all.
            verdict = challenge(model, interval, plan.scalers, None, plan.series, plan.index, config, freq,
                                settings.holdout_windows, diverged=facts["diverged"])
            if verdict.promote:
                candidate = ModelVersion(f"backtest-{number}", model, plan.scalers,
                                         {"config": config.as_dict(), "interval": interval,
                                          "fallback_series": verdict.fallback_series,
                                          "base_series": verdict.base_series})
            epochs, outcome = facts["epochs_run"], verdict.reason
        rows = forecast(candidate, clean, freq, horizon, settings.interval_level, as_of=cut)
        if log:
            by = published_by(rows)
            log.info("origin %d/%d (%s): %d epochs, %d series forecast, %d by the model, %d by its seasonal base "
                     "(%s)", number, len(cuts), cut.isoformat(), epochs, sum(by.values()), by["model"], by["base"],
                     outcome)
        scale_history = clean if actuals is None else scored[scored[TIMESTAMP] <= cut]
        scores.append(_score(rows, truth, scale_history, cut, season))
    per_series = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=[SERIES_ID, "origin"])
    return BacktestResult(per_series, cuts, horizon, lookback, season, train_seconds)


def _score(rows: pd.DataFrame, truth: pd.DataFrame, clean: pd.DataFrame, cut: pd.Timestamp, season: int) -> pd.DataFrame:
    merged = rows.merge(truth[[SERIES_ID, TIMESTAMP, VALUE]], on=[SERIES_ID, TIMESTAMP], how="inner")
    histories = {sid: g[VALUE].to_numpy() for sid, g in clean.groupby(SERIES_ID)}
    records = []
    for series_id, group in merged.groupby(SERIES_ID, sort=True):
        actual = group[VALUE].to_numpy()
        records.append({
            SERIES_ID: series_id, "origin": cut, "points": len(actual),
            "mase": mase(actual, group[YHAT].to_numpy(), histories[series_id], season),
            "smape": smape(actual, group[YHAT].to_numpy()),
            "coverage": coverage(actual, group[YHAT_LOWER].to_numpy(), group[YHAT_UPPER].to_numpy()),
            MODEL_VERSION: group[MODEL_VERSION].iloc[0],
        })
    return pd.DataFrame(records)


def summary_markdown(result: BacktestResult, source: str) -> str:
    summary = result.summary()
    lines = [f"# Backtest: {len(result.origins)} rolling origins, H={result.horizon}, m={result.season}", "",
             f"Data: {source}. Origins: {', '.join(o.date().isoformat() for o in result.origins)}.", "",
             "| metric | mean |", "|---|---|",
             f"| MASE | {summary['mase']:.4f} |", f"| sMAPE | {summary['smape']:.2f} |",
             f"| 80% interval coverage | {summary['coverage']:.3f} |",
             f"| training seconds (all origins) | {summary['train_seconds']:.1f} |", "",
             "| origin | MASE | sMAPE | coverage |", "|---|---|---|---|"]
    for origin, group in result.per_series.groupby("origin"):
        lines.append(f"| {origin.date().isoformat()} | {group['mase'].mean():.4f} | {group['smape'].mean():.2f} | "
                     f"{group['coverage'].mean():.3f} |")
    return "\n".join(lines)
