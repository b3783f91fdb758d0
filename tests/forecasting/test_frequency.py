"""Frequency inference from timestamps (forecasting/frequency.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.frequency import infer_frequency


@pytest.mark.parametrize("stamps, expected", [
    (pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC"), "D"),
    (pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC"), "h"),
    (pd.date_range("2024-01-01", periods=10, freq="30min", tz="UTC"), "30min"),
    (pd.date_range("2024-01-01", periods=10, freq="6h", tz="UTC"), "6h"),
    (pd.date_range("2024-01-07", periods=10, freq="7D", tz="UTC"), "7D"),
    (pd.date_range("2024-01-01", periods=10, freq="MS", tz="UTC"), "MS"),
    (pd.date_range("2024-01-31", periods=10, freq="ME", tz="UTC"), "ME"),
])
def test_frequency_is_inferred_from_the_timestamps(stamps, expected):
    assert infer_frequency(pd.Series(stamps)) == expected


def test_frequency_inference_survives_gaps_and_needs_two_points():
    daily = pd.Series(pd.date_range("2024-01-01", periods=30, freq="D", tz="UTC"))
    with_gaps = daily.drop(index=[3, 4, 5, 10, 17, 18]).reset_index(drop=True)
    assert infer_frequency(with_gaps) == "D"  # the most common spacing, not the first or the mean
    assert infer_frequency(daily.iloc[:1]) is None


def test_calendar_months_are_recognised_with_months_missing():
    months = pd.Series(pd.date_range("2020-01-01", periods=24, freq="MS", tz="UTC"))
    assert infer_frequency(months.drop(index=[5, 6, 13]).reset_index(drop=True)) == "MS"
    ends = pd.Series(pd.date_range("2020-01-31", periods=24, freq="ME", tz="UTC"))
    assert infer_frequency(ends.drop(index=[3, 17]).reset_index(drop=True)) == "ME"
    # Month starts that are mostly two months apart are not a monthly series with gaps
    every_other = pd.Series(pd.date_range("2020-01-01", periods=12, freq="2MS", tz="UTC"))
    assert infer_frequency(every_other) != "MS"
