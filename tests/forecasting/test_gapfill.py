"""Gap-filling: regular grids, every method, imputed flags, and the gap limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.gapfill import FILL_METHODS, gapfill, regularize


def series(values, start="2020-01-01", freq="D", name="a"):
    stamps = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    frame = pd.DataFrame({"series_id": pd.array([name] * len(values), dtype="string"), "timestamp": stamps,
                          "value": np.asarray(values, dtype="float64")})
    return frame


def drop(frame, positions):
    return frame.drop(index=positions).reset_index(drop=True)


@pytest.mark.parametrize("method, expected", [
    ("ffill", [2.0, 2.0]),
    ("bfill", [5.0, 5.0]),
    ("linear", [3.0, 4.0]),
    ("time", [3.0, 4.0]),
    ("seasonal_linear", [3.0, 4.0]),  # no full week before the gap: linear
    ("auto", [3.0, 4.0]),  # daily data: linear
])
def test_each_method_fills_and_marks(method, expected):
    frame = drop(series([0, 1, 2, 3, 4, 5, 6]), [3, 4])
    result = gapfill(frame, "D", method, max_gap=5)
    clean = result.clean
    assert len(clean) == 7
    assert clean["imputed"].tolist() == [False, False, False, True, True, False, False]
    assert clean.loc[clean["imputed"], "value"].tolist() == expected


def test_time_interpolation_on_an_hourly_grid():
    frame = series([0.0, 3.0, 6.0, 9.0], freq="h")
    frame = drop(frame, [1, 2])
    clean = gapfill(frame, "h", "time", max_gap=5).clean
    assert clean["value"].tolist() == pytest.approx([0.0, 3.0, 6.0, 9.0])


def test_seasonal_fill_copies_last_season():
    weekly_pattern = np.tile([10, 20, 30, 40, 50, 60, 70], 3).astype(float)
    frame = drop(series(weekly_pattern), [15, 16])  # positions 15, 16 are weekday 1 and 2
    clean = gapfill(frame, "D", "seasonal", max_gap=5).clean
    assert clean.loc[[15, 16], "value"].tolist() == [20.0, 30.0]
    assert clean.loc[[15, 16], "imputed"].all()


def test_gap_over_the_limit_sets_aside_the_history_before_it_and_keeps_the_series():
    good = drop(series(range(30), name="good"), [10])
    bad = drop(series(range(40), name="bad"), list(range(5, 15)) + [20] + list(range(25, 33)))
    result = gapfill(pd.concat([good, bad], ignore_index=True), "D", "linear", max_gap=7)
    kept = result.clean[result.clean["series_id"] == "bad"]
    # The latest gap over the limit (8 periods, 25..32) is the break: the series goes on from day 33.
    assert kept["timestamp"].min() == pd.Timestamp("2020-01-01", tz="UTC") + pd.Timedelta(days=33)
    assert len(kept) == 7 and not kept["imputed"].any()
    assert len(result.clean[result.clean["series_id"] == "good"]) == 30
    set_aside = result.quarantined
    assert set(set_aside["series_id"]) == {"bad"}
    assert len(set_aside) == 40 - 10 - 1 - 8 - 7  # every observed row before the break, nothing else
    reason = set_aside["reason"].iloc[0]
    assert "gap of 8 periods" in reason and "2020-01-26" in reason and "fill limit of 7" in reason
    assert "forecast from the 7 periods after it" in reason


def test_a_long_gap_short_beside_the_history_before_it_is_filled_not_cut():
    from forecasting.gapfill import bridged_gaps

    # 20 days out after 300 observed: over the limit of 14, but filling it invents 7% of what precedes it.
    frame = drop(series(np.arange(400.0), name="long"), list(range(300, 320)))
    result = gapfill(frame, "D", "linear", max_gap=14)
    assert result.quarantined.empty and len(result.clean) == 400
    assert result.clean["imputed"].sum() == 20 and result.clean["value"].tolist() == list(np.arange(400.0))
    gaps = bridged_gaps(result.clean, 14)
    assert gaps[["series_id", "length"]].values.tolist() == [["long", 20]]
    # The same gap after only 30 observed points (over half) still cuts: the series goes on after it.
    early = gapfill(drop(series(np.arange(400.0)), list(range(30, 50))), "D", "linear", max_gap=14)
    assert len(early.quarantined) == 30 and early.clean["timestamp"].min() == frame["timestamp"][0] + pd.Timedelta(days=50)
    # A cut restarts the count: a later gap is weighed against the points after the cut only (35 here,
    # too few for a 20-day gap, though 45 were observed in all).
    twice = gapfill(drop(series(np.arange(400.0)), list(range(10, 30)) + list(range(65, 85))), "D", "linear",
                    max_gap=14)
    assert len(twice.quarantined) == 45 and not twice.clean["imputed"].any()


def test_a_gap_at_the_very_end_leaves_the_last_observation():
    frame = drop(series(range(30), name="s"), list(range(12, 29)))
    result = gapfill(frame, "D", "linear", max_gap=5)
    assert result.clean["value"].tolist() == [29.0]
    assert len(result.quarantined) == 12


def test_real_sample_with_injected_gaps_is_regular_again(sample, rng):
    holes = rng.choice(len(sample), size=200, replace=False)
    frame = sample.drop(index=holes).reset_index(drop=True)
    result = gapfill(frame, "D", "linear", max_gap=14)
    clean = result.clean
    assert len(clean) == len(sample)
    assert int(clean["imputed"].sum()) == 200 - _holes_at_series_edges(sample, holes)
    assert clean["value"].notna().all()
    observed = clean[~clean["imputed"]].merge(sample, on=["series_id", "timestamp"], suffixes=("", "_orig"))
    assert (observed["value"] == observed["value_orig"]).all()  # observed values are never changed
    steps = clean.groupby("series_id")["timestamp"].diff().dropna()
    assert (steps == pd.Timedelta(days=1)).all()


def _holes_at_series_edges(sample, holes):
    """Rows dropped at a series' very start or end shorten it instead of leaving a gap."""
    dropped = sample.loc[holes]
    edges = 0
    for sid, group in sample.groupby("series_id"):
        kept = group.drop(index=[h for h in holes if h in group.index])
        gone = dropped[dropped["series_id"] == sid]["timestamp"]
        edges += int(((gone < kept["timestamp"].min()) | (gone > kept["timestamp"].max())).sum())
    return edges


def test_regularize_keeps_covariates_and_methods_are_known():
    frame = drop(series([1, 2, 3, 4]), [1]).assign(temp=[5.0, 7.0, 8.0])
    regular = regularize(frame, "D")
    assert regular["imputed"].tolist() == [False, True, False, False]
    clean = gapfill(frame, "D", "linear", 3).clean
    assert clean["temp"].tolist() == [5.0, 5.0, 7.0, 8.0]  # covariates are carried forward
    from typing import get_args

    from forecasting.settings import FillMethod

    assert set(FILL_METHODS) == set(get_args(FillMethod))  # every method the settings accept exists


def test_model_fill_uses_the_champion_and_falls_back_to_linear(sample_slice):
    from forecasting.forecast import forecast
    from forecasting.model.config import ModelConfig
    from forecasting.model.version import ModelVersion
    from forecasting.windows import plan_windows

    clean = sample_slice.assign(imputed=False)
    plan = plan_windows(clean, "D", 14, 5, 0.2)
    config = ModelConfig(lookback=14, horizon=5, features=tuple(plan.features), quantiles=(0.1, 0.5, 0.9), units=4,
                         layers=1, level_window=7, seed=0)
    champion = ModelVersion("v1", config.build(), plan.scalers,
                            {"config": config.as_dict(), "interval": {"correction": [0.0] * 5}})
    first = sorted(clean["series_id"].unique())[0]
    positions = clean.index[clean["series_id"] == first]
    gap = list(positions[40:47])  # 7 missing days: filled by one horizon of 5, then 2 more
    early = list(positions[3:5])  # too little history before it: linear interpolation
    holed = clean.drop(index=gap + early).drop(columns="imputed").reset_index(drop=True)

    result = gapfill(holed, "D", "model", max_gap=10, champion=champion).clean
    series = result[result["series_id"] == first].reset_index(drop=True)
    assert series["imputed"].sum() == 9
    # The first 5 filled values are the champion's forecast from the 14 days before the gap.
    history = series.iloc[26:40].drop(columns="imputed").assign(imputed=False)
    expected = forecast(champion, history, "D", horizon=5)["yhat"].to_numpy()
    np.testing.assert_allclose(series.loc[40:44, "value"].to_numpy(), expected, rtol=1e-5)
    linear = gapfill(holed, "D", "linear", max_gap=10).clean
    linear_series = linear[linear["series_id"] == first].reset_index(drop=True)
    np.testing.assert_allclose(series.loc[3:4, "value"], linear_series.loc[3:4, "value"])
    assert not np.allclose(series.loc[40:46, "value"], linear_series.loc[40:46, "value"])
    # Without a champion the model method is linear interpolation.
    no_champion = gapfill(holed, "D", "model", max_gap=10).clean
    np.testing.assert_allclose(no_champion["value"], linear["value"])


def test_sub_daily_frequencies_default_to_a_day_as_season_and_horizon_and_two_weeks_of_window():
    from forecasting.frequency import defaults_for

    hourly = defaults_for("h")
    assert (hourly.season, hourly.horizon, hourly.long_season) == (24, 24, 168)
    assert (hourly.lookback, hourly.recurrent_lookback) == (336, 168)  # the network reads the latest week
    assert defaults_for("2h").recurrent_lookback == 7 * 12 and defaults_for("2h").lookback == 14 * 12
    thirty = defaults_for("30min")
    assert (thirty.season, thirty.horizon, thirty.lookback, thirty.recurrent_lookback) == (48, 48, 672, 144)
    # Series too short for two full windows get windows of the recurrent lookback instead
    assert hourly.sizes_for(671).lookback == 168 and hourly.sizes_for(672).lookback == 336
    # Elsewhere half the window, keeping the two seasons the base's profile needs where the window has them
    assert defaults_for("D").sizes_for(55).lookback == 14 and defaults_for("D").sizes_for(56) == defaults_for("D")
    assert defaults_for("7D").sizes_for(80).lookback == 26  # 52 weeks never held two yearly seasons
    assert defaults_for("MS").sizes_for(40) == defaults_for("MS")  # 12 months would lose the profile
    assert (defaults_for("D").max_gap, hourly.max_gap, thirty.max_gap) == (14, 48, 96)  # sub-daily: two days
    assert defaults_for("15min").season == 96 and defaults_for("7min").season == 1  # 7 minutes do not divide a day


def test_seasonal_linear_fill_keeps_the_daily_cycle_and_meets_both_ends():
    hours = np.arange(24 * 6, dtype=float)
    truth = 100 + 0.5 * hours + 10 * np.sin(2 * np.pi * hours / 24)  # a daily cycle on a trend
    frame = drop(series(truth, freq="h"), list(range(60, 80)) + [100])
    filled = gapfill(frame, "h", "seasonal_linear", max_gap=48).clean
    assert filled["value"].to_numpy() == pytest.approx(truth)  # season plus a line: exact
    assert filled["imputed"].sum() == 21
    by_default = gapfill(frame, "h", "auto", max_gap=48).clean  # sub-daily data: the seasonal fill
    pd.testing.assert_frame_equal(by_default, filled)
    straight = gapfill(frame, "h", "linear", max_gap=48).clean["value"].to_numpy()
    assert np.abs(straight - truth).max() > 5  # a line through 20 hours erases the cycle


def test_seasonal_linear_fill_of_a_hole_longer_than_a_season_repeats_the_last_observed_one():
    days = np.tile([1.0, 5.0, 3.0], 8)  # season 3 ("3 periods a day": 8-hourly), no trend
    frame = drop(series(days, freq="8h"), list(range(10, 17)))  # 7 missing: over two seasons
    filled = gapfill(frame, "8h", "auto", max_gap=10).clean
    assert filled["value"].to_numpy() == pytest.approx(days)


def test_by_default_an_hourly_gap_of_a_day_is_filled_and_a_longer_one_cuts_the_history():
    stamps = pd.date_range("2024-01-01", periods=24 * 20, freq="h", tz="UTC")
    frame = pd.DataFrame({"series_id": "s", "timestamp": stamps, "value": np.arange(len(stamps), dtype=float)})
    day_out = frame.drop(index=range(200, 224))  # a day-long outage: filled, marked
    result = gapfill(day_out, "h", "linear", max_gap=None)
    assert len(result.clean) == len(frame) and result.clean["imputed"].sum() == 24 and result.quarantined.empty
    three_days_out = frame.drop(index=range(120, 192))  # over two days: the history before it is set aside
    result = gapfill(three_days_out, "h", "linear", max_gap=None)
    assert result.clean["timestamp"].min() == stamps[192] and len(result.quarantined) == 120
    assert "over the fill limit of 48" in result.quarantined["reason"].iloc[0]
