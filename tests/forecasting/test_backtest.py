"""Rolling-origin backtest: the cuts, the scoring, and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest, rolling_origins, summary_markdown
from forecasting.settings import Settings, load_settings


def test_rolling_origins_step_back_one_horizon_each():
    last = pd.Timestamp("2016-12-31", tz="UTC")
    cuts = rolling_origins(last, "D", horizon=14, count=3)
    assert [c.date().isoformat() for c in cuts] == ["2016-11-19", "2016-12-03", "2016-12-17"]


def test_backtest_scores_every_series_at_every_origin_and_reproduces(sample_slice):
    settings = load_settings(horizon=7, lookback=14, max_epochs=2, units=8, layers=1)
    result = backtest(sample_slice, "D", settings, origins=3)
    assert len(result.per_series) == 3 * 3
    assert result.per_series["points"].eq(7).all()  # every forecast step had an observed value
    assert result.origins[-1] == sample_slice["timestamp"].max() - pd.Timedelta(days=7)
    assert np.isfinite(result.per_series[["mase", "smape", "coverage"]].to_numpy()).all()
    summary = result.summary()
    assert 0.0 <= summary["coverage"] <= 1.0 and summary["series_origins"] == 9
    assert "| MASE |" in summary_markdown(result, "sample")
    report = result.as_dict()
    assert report["origins"][0].startswith(result.origins[0].date().isoformat())

    # Trained again in the same process (later trainings included): the very same scores.
    again = backtest(sample_slice, "D", settings, origins=3)
    pd.testing.assert_frame_equal(again.per_series, result.per_series)
    assert again.summary() | {"train_seconds": 0} == summary | {"train_seconds": 0}


def test_cuts_too_short_to_train_score_the_seasonal_naive_a_run_would_publish(sample_slice):
    short = sample_slice[sample_slice["timestamp"] > sample_slice["timestamp"].max() - pd.Timedelta(days=30)]
    settings = Settings(lookback=28, horizon=7, max_epochs=2)  # the cuts hold 16 and 23 days: under the lookback
    result = backtest(short.reset_index(drop=True), "D", settings, origins=2)
    assert len(result.per_series) == 3 * 2 and (result.per_series["model_version"] == "seasonal-naive").all()


def test_a_gapped_feed_is_scored_on_the_complete_rows_when_they_are_given(sample_slice):
    from forecasting.metrics import mase

    short = sample_slice[sample_slice["timestamp"] > sample_slice["timestamp"].max() - pd.Timedelta(days=30)]
    short = short.reset_index(drop=True)
    last = short["timestamp"].max()
    # The feed lost each series' second-to-last day (inside the last cut's horizon) and a day of history.
    lost = short["timestamp"].isin([last - pd.Timedelta(days=1), last - pd.Timedelta(days=20)])
    settings = Settings(lookback=28, horizon=7, max_epochs=2)  # too short to train: seasonal naive, cheap
    alone = backtest(short[~lost].reset_index(drop=True), "D", settings, origins=1)
    scored = backtest(short[~lost].reset_index(drop=True), "D", settings, origins=1, actuals=short)
    assert alone.per_series["points"].eq(6).all() and scored.per_series["points"].eq(7).all()
    # The scale is the complete history's: the same MASE a forecast from the complete feed would be held to.
    cut = scored.origins[0]
    for _, row in scored.per_series.iterrows():
        series = short[short["series_id"] == row["series_id"]]
        truth = series[series["timestamp"] > cut]["value"].to_numpy()
        history = series[series["timestamp"] <= cut]["value"].to_numpy()
        naive = history[-7:][:len(truth)]  # seasonal naive (m = 7) over the 7-day horizon
        assert row["mase"] == pytest.approx(mase(truth, naive, history, 7))
