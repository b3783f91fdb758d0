"""Metric definitions, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.metrics import coverage, mase, mase_scale, seasonal_naive, smape


def test_seasonal_naive_repeats_the_last_season():
    history = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert seasonal_naive(history, 5, season=3).tolist() == [8, 9, 10, 8, 9]
    assert seasonal_naive(np.array([4.0, 5.0]), 3, season=7).tolist() == [5.0, 5.0, 5.0]  # too short: last value
    with pytest.raises(ValueError):
        seasonal_naive(np.array([]), 3, 7)


def test_mase_scales_by_in_sample_seasonal_naive_error():
    history = np.array([0.0, 10, 0, 12, 0, 14])  # lag-2 differences: 0, 2, 0, 2 -> MAE 1
    assert mase_scale(history, season=2) == pytest.approx(1.0)
    assert mase(np.array([1.0, 3.0]), np.array([0.0, 0.0]), history, season=2) == pytest.approx(2.0)
    assert np.isnan(mase(np.array([1.0]), np.array([1.0]), np.array([5.0, 5.0, 5.0]), season=1))  # flat history


def test_smape_and_coverage():
    assert smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])) == pytest.approx(100 * (2 * 50 / 150) / 2)
    assert coverage(np.array([1, 5, 10]), np.array([0, 6, 9]), np.array([2, 7, 11])) == pytest.approx(2 / 3)
