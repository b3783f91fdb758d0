"""Realised accuracy in the core: scoring against later observations (MASE scale at the origin, seasonal
naive from the same origin, coverage), restated actuals, the rolling windows and the drift rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.accuracy import (DriftRule, Rolling, _scales_at, drift_reason, merge_scores, rolling,
                                  score_publications)
from forecasting.metrics import mase_scale, seasonal_naive

SEASON = 7


def clean_series(rng, days=60, series=("a", "b")):
    stamps = pd.date_range("2016-01-01", periods=days, freq="D", tz="UTC")
    return pd.concat([pd.DataFrame({"series_id": name, "timestamp": stamps,
                                    "value": 50 + 10 * np.sin(np.arange(days) * 2 * np.pi / 7)
                                    + rng.normal(0, 2, days), "imputed": False}) for name in series],
                     ignore_index=True)


def publication(clean, origin_day, horizon=5, run_date="2016-01-30", offset=3.0):
    rows = []
    for name, part in clean.groupby("series_id"):
        origin = part["timestamp"].iloc[origin_day]
        for step in range(1, horizon + 1):
            stamp = origin + pd.Timedelta(days=step)
            rows.append({"series_id": name, "origin": origin, "timestamp": stamp, "step": step, "yhat": 50.0 + step,
                         "yhat_lower": 50.0 + step - offset, "yhat_upper": 50.0 + step + offset,
                         "model_version": "v1", "run_date": run_date})
    return pd.DataFrame(rows)


def test_each_observed_point_is_scored_against_the_scale_and_naive_at_its_origin(rng):
    clean = clean_series(rng)
    forecasts = publication(clean, origin_day=40, horizon=10)
    clean.loc[(clean["series_id"] == "b") & (clean["timestamp"] == forecasts["timestamp"].iloc[2]), "imputed"] = True
    scored = score_publications(forecasts, clean[clean["timestamp"] <= forecasts["timestamp"].iloc[6]], SEASON)
    assert len(scored) == 2 * 7 - 1  # steps 1-7 observed so far, minus the imputed one of series b
    for name, part in clean.groupby("series_id"):
        values = part["value"].to_numpy()
        scale = mase_scale(values[:41], SEASON)
        naive = seasonal_naive(values[:41], 10, SEASON)
        mine = scored[scored["series_id"] == name].set_index("step")
        for step, row in mine.iterrows():
            y = values[40 + step]
            assert row["y"] == y and row["abs_error"] == pytest.approx(abs(y - (50 + step)))
            assert row["scaled_error"] == pytest.approx(abs(y - (50 + step)) / scale)
            assert row["naive_scaled_error"] == pytest.approx(abs(y - naive[step - 1]) / scale)
            assert row["covered"] == (abs(y - (50 + step)) <= 3.0)
    assert 3 not in set(scored.loc[scored["series_id"] == "b", "step"])


@pytest.mark.parametrize("season", [1, 7, 24])
def test_running_scales_equal_the_metric_at_every_origin(rng, season):
    values = rng.normal(0, 1, 90).cumsum()
    ids = np.array(["a"] * 30 + ["b"] * 60)
    firsts = np.array([0] * 30 + [30] * 60)
    origins = np.arange(90)
    got = _scales_at(values, ids, firsts, origins, season)
    want = [mase_scale(values[firsts[o]:o + 1], season) for o in origins]
    np.testing.assert_allclose(got, want, equal_nan=True)


def test_restated_actuals_replace_the_scored_row_and_are_counted(rng):
    clean = clean_series(rng)
    forecasts = publication(clean, origin_day=40)
    first = score_publications(forecasts, clean.iloc[:43], SEASON)  # series a: steps 1-2 due
    merged, new, restated = merge_scores(first.iloc[0:0], first)
    assert (new, restated) == (len(first), 0)
    corrected = clean.copy()
    corrected.loc[41, "value"] += 100  # series a, step 1: a late correction
    later = score_publications(forecasts, corrected, SEASON)
    merged, new, restated = merge_scores(first, later)
    assert restated == 1 and new == len(later) - len(first)
    assert merged.loc[(merged["series_id"] == "a") & (merged["step"] == 1), "y"].item() == corrected.loc[41, "value"]
    assert merge_scores(merged, later)[1:] == (0, 0)  # the same actuals again: nothing new, nothing restated


def accuracy_rows(run_dates, scaled, naive, covered, series=("a",)):
    return pd.DataFrame([{"run_date": day, "series_id": name, "step": 1, "scaled_error": scaled,
                          "naive_scaled_error": naive, "covered": covered}
                         for day in run_dates for name in series])


def test_rolling_takes_the_latest_publications():
    days = [f"2016-01-{d:02d}" for d in range(1, 11)]
    frame = pd.concat([accuracy_rows(days[:5], 2.0, 1.0, False), accuracy_rows(days[5:], 0.5, 1.0, True),
                       accuracy_rows(days[5:], 1.5, 1.0, True, series=("worst",))])
    last = rolling(frame, 5)
    assert (last.run_dates, last.first_run_date, last.points) == (5, "2016-01-06", 10)
    assert last.mase == pytest.approx(1.0) and last.coverage == 1.0 and last.worst_series == "worst"
    assert rolling(frame, 28).run_dates == 10 and rolling(frame.iloc[0:0], 7).points == 0


RULE = DriftRule(mase_ratio=1.5, naive_ratio=1.0, coverage_band=0.15, min_points=100)


def window(mase=0.8, naive=0.9, coverage=0.8, points=200):
    return Rolling(7, "2016-01-01", points, mase, naive, coverage, "a", mase)


@pytest.mark.parametrize("recent, holdout, says", [
    (window(), 0.7, None),
    (window(mase=1.2), 0.7, "over 1.5 x the champion's holdout MASE 0.700 and over 1 x seasonal naive's 0.900"),
    (window(mase=1.2, naive=0.9), None, None),  # no holdout to compare with: beating naive alone is not drift
    (window(mase=1.2, naive=1.3), 0.7, None),  # a hard week for seasonal naive too
    (window(coverage=0.55), 0.7, "coverage 0.55 is outside 0.80 +/- 0.15"),
    (window(coverage=0.97), 0.7, "coverage 0.97 is outside"),
    (window(mase=3.0, points=99), 0.7, None),  # too few points to judge
])
def test_drift_rule(recent, holdout, says):
    reason = drift_reason(recent, holdout, 0.8, RULE)
    assert (reason is None) if says is None else (says in reason)
