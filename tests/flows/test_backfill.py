"""Backfill: one daily run per as-of, oldest first, skipping what is already published (resumable)."""

from __future__ import annotations

import pytest

from flows.backfill import as_of_dates, backfill_flow
from stores.forecasts import read_parquet_forecasts, read_sql_forecasts
from tests.conftest import write_csv


def test_backfill_runs_in_order_and_resumes(prefect_server, tmp_path, sample_slice):
    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    write_csv(sample_slice, inbox / "history.csv")
    options = dict(input_path=str(inbox), data_dir=str(data_dir), horizon=7, lookback=14, max_epochs=2)

    first = backfill_flow(start="2016-12-22", end="2016-12-23", **options)  # stops here, as if interrupted
    assert first == {"ran": ["2016-12-22", "2016-12-23"], "skipped": []}
    resumed = backfill_flow(start="2016-12-22", end="2016-12-24", **options)
    assert resumed == {"ran": ["2016-12-24"], "skipped": ["2016-12-22", "2016-12-23"]}

    parquet = read_parquet_forecasts(data_dir)
    sql = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    assert sorted(parquet["run_date"].astype(str).unique()) == ["2016-12-22", "2016-12-23", "2016-12-24"]
    assert len(parquet) == len(sql) == 3 * 3 * 7  # three as-ofs x three series x seven steps, no duplicates


def test_backfill_arguments_are_checked():
    assert [d.day for d in as_of_dates("2016-12-01", "2016-12-15", "7D")] == [1, 8, 15]
    with pytest.raises(ValueError, match="before --start"):
        as_of_dates("2016-12-05", "2016-12-01", "D")
    with pytest.raises(ValueError, match="--every 'fortnightly'"):
        as_of_dates("2016-12-01", "2016-12-05", "fortnightly")
    with pytest.raises(ValueError, match="ISO-8601"):
        as_of_dates("yesterday", "2016-12-05", "D")
