"""Faults injected into the whole daily flow, one data dir living through several days of them:
diverging training, a database that is down for a while or for good, a source that always fails."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import flows.daily as daily
from forecasting.model.dataset import WindowDataset
import stores.archive as archive
from stores.forecasts import read_parquet_forecasts, read_sql_forecasts
import stores.forecasts as forecast_store
from tests.conftest import write_csv


def run(inbox, data_dir, as_of):
    return daily.daily_forecast(input_path=str(inbox), data_dir=str(data_dir), as_of=as_of, horizon=7,
                                lookback=14, max_epochs=3)


def stores(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    key = ["run_date", "series_id", "step"]
    parquet = read_parquet_forecasts(data_dir).astype({"run_date": str}).sort_values(key).reset_index(drop=True)
    sql = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    sql = sql.astype({"run_date": str}).sort_values(key).reset_index(drop=True)
    return parquet, sql


def assert_agree(data_dir) -> pd.DataFrame:
    parquet, sql = stores(data_dir)
    columns = ["run_date", "series_id", "step", "yhat", "yhat_lower", "yhat_upper", "model_version", "run_id"]
    pd.testing.assert_frame_equal(parquet[columns], sql[columns], check_dtype=False)
    return parquet


def test_the_champion_and_the_stores_survive_every_fault(prefect_server, tmp_path, sample_slice, monkeypatch):
    from prefect.artifacts import Artifact

    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    write_csv(sample_slice, inbox / "history.csv")
    # No waiting between retries in a test; the retry counts and conditions stay the task's own.
    monkeypatch.setattr(daily, "ingest_files", daily.ingest_files.with_options(retry_delay_seconds=0))
    monkeypatch.setattr(daily, "publish", daily.publish.with_options(retry_delay_seconds=0))

    first = run(inbox, data_dir, "2016-12-23")
    champion = first["train"].champion_version
    assert champion and first["train"].promoted

    # Day 2: training diverges (NaN targets make a NaN loss). The champion keeps publishing, and the
    # model-comparison artifact says why.
    real_getitem = WindowDataset.__getitem__

    def nan_targets(self, index):
        inputs, targets = real_getitem(self, index)
        return inputs, np.full_like(targets, np.nan)

    with monkeypatch.context() as patch:
        patch.setattr(WindowDataset, "__getitem__", nan_targets)
        diverged = run(inbox, data_dir, "2016-12-24")
    assert not diverged["train"].promoted and "diverged" in diverged["train"].decision
    assert diverged["published"].model_version == champion
    assert "training diverged" in Artifact.get("model-comparison").data
    assert set(assert_agree(data_dir).query("run_date == '2016-12-24'")["model_version"]) == {champion}

    # Day 3: the database refuses the first two writes; publication retries and the run completes.
    real_replace, attempts = forecast_store.replace_sql_rows, []

    def flaky_database(*args, **kwargs):
        attempts.append(1)
        if len(attempts) <= 2:
            raise sa.exc.OperationalError("INSERT ...", {}, Exception("simulated: server closed the connection"))
        return real_replace(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(forecast_store, "replace_sql_rows", flaky_database)
        recovered = run(inbox, data_dir, "2016-12-25")
    assert len(attempts) == 3 and recovered["published"].rows == 3 * 7
    before = assert_agree(data_dir)
    assert set(before["run_date"]) == {"2016-12-23", "2016-12-24", "2016-12-25"}

    # Day 4: the database stays down: the run fails after its retries; both stores are as they were.
    with monkeypatch.context() as patch:
        def database_down(*args, **kwargs):
            raise sa.exc.OperationalError("INSERT ...", {}, Exception("simulated: connection refused"))

        patch.setattr(forecast_store, "replace_sql_rows", database_down)
        with pytest.raises(sa.exc.OperationalError):
            run(inbox, data_dir, "2016-12-26")
    pd.testing.assert_frame_equal(assert_agree(data_dir), before)

    # Day 5: a new file arrives but the source always fails to read: ingest retries 3 times, the run
    # fails cleanly, and yesterday's forecasts stay published.
    write_csv(sample_slice.iloc[:5], inbox / "late.csv")
    reads = []

    def unreachable(path):
        reads.append(path)
        raise OSError("simulated: the share is unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(archive.files, "content_hash", unreachable)
        with pytest.raises(OSError, match="unreachable"):
            run(inbox, data_dir, "2016-12-27")
    assert len(reads) == 4  # the first try and 3 retries
    pd.testing.assert_frame_equal(assert_agree(data_dir), before)
