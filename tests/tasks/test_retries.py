"""Retries are for transient faults only: an I/O error is retried, bad input is not."""

from __future__ import annotations

import pandas as pd
import pytest
from prefect import flow

from forecasting.errors import PipelineError
from forecasting.settings import load_settings
import stores.archive as archive
from tasks.ingest import ingest_files
from tests.conftest import write_csv


def test_ingest_retries_io_errors_then_completes(prefect_server, tmp_path, sample_slice, monkeypatch):
    write_csv(sample_slice, tmp_path / "inbox" / "day.csv")
    settings = load_settings(input_path=tmp_path / "inbox", data_dir=tmp_path / "store")
    real_hash, calls = archive.files.content_hash, []

    def flaky_hash(path):
        calls.append(path)
        if len(calls) <= 2:
            raise OSError("simulated: network share went away")
        return real_hash(path)

    monkeypatch.setattr(archive.files, "content_hash", flaky_hash)

    @flow
    def only_ingest():
        return ingest_files.with_options(retry_delay_seconds=0)(settings)

    summary = only_ingest()
    assert len(calls) == 3  # two failures, then success
    assert summary.files_new == 1 and summary.rows_new == len(sample_slice)


def test_ingest_does_not_retry_bad_input(prefect_server, tmp_path, monkeypatch):
    settings = load_settings(input_path=tmp_path / "absent", data_dir=tmp_path / "store")
    real_discover, calls = archive.discover_files, []

    def counting_discover(path):
        calls.append(path)
        return real_discover(path)

    monkeypatch.setattr(archive, "discover_files", counting_discover)

    @flow
    def only_ingest():
        return ingest_files.with_options(retry_delay_seconds=0)(settings)

    with pytest.raises(PipelineError, match="does not exist"):
        only_ingest()
    assert len(calls) == 1


# Per stage, a function its task calls (looked up in the task's module) that fails once with OSError.
STAGE_FAULTS = {
    "ingest": ("stores.archive", "discover_files"),
    "validate": ("tasks.validate", "read_manifest"),
    "gap-fill-chunk": ("tasks.gapfill", "gapfill"),
    "gap-fill": ("tasks.gapfill", "write_clean"),
    "windows": ("tasks.windows", "plan_windows"),
    "train": ("tasks.train", "read_training_windows"),
    "explain": ("tasks.explain", "read_training_windows"),
    "accuracy": ("tasks.accuracy", "read_publications"),
    "publish": ("tasks.publish", "forecast"),
}


def test_every_stage_retries_a_transient_fault_and_ends_as_an_undisturbed_run(prefect_server, tmp_path,
                                                                                sample_slice, monkeypatch):
    import importlib

    import flows.daily as daily
    from stores.forecasts import read_parquet_forecasts, read_sql_forecasts
    from stores.registry import read_index
    import tasks.gapfill as gapfill_module

    write_csv(sample_slice, tmp_path / "inbox" / "day.csv")

    def run(data_dir):
        return daily.daily_forecast(input_path=str(tmp_path / "inbox"), data_dir=str(data_dir),
                                    as_of="2016-12-23", horizon=7, lookback=14, max_epochs=3)

    undisturbed = run(tmp_path / "calm")
    # No waiting between retries in a test; the retry counts and conditions stay the tasks' own.
    for name in ("ingest_files", "validate_batch", "build_windows", "train_model", "explain_model", "score_accuracy",
                 "publish"):
        monkeypatch.setattr(daily, name, getattr(daily, name).with_options(retry_delay_seconds=0))
    for name in ("fill_chunk", "merge_filled"):
        monkeypatch.setattr(gapfill_module, name, getattr(gapfill_module, name).with_options(retry_delay_seconds=0))
    calls = {stage: 0 for stage in STAGE_FAULTS}
    for stage, (module_name, function) in STAGE_FAULTS.items():
        module = importlib.import_module(module_name)

        def fails_once(*args, _stage=stage, _real=getattr(module, function), **kwargs):
            calls[_stage] += 1
            if calls[_stage] == 1:
                raise OSError(f"simulated: the share went away during {_stage}")
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, function, fails_once)
    disturbed = run(tmp_path / "faulty")

    assert calls == {stage: 2 for stage in STAGE_FAULTS}  # each stage failed once, then its retry went through
    assert disturbed["train"].promoted and len(read_index(tmp_path / "faulty" / "models")["versions"]) == 1
    columns = ["series_id", "step", "timestamp", "yhat", "yhat_lower", "yhat_upper"]
    calm = read_parquet_forecasts(tmp_path / "calm")[columns].sort_values(["series_id", "step"])
    faulty = read_parquet_forecasts(tmp_path / "faulty")[columns].sort_values(["series_id", "step"])
    pd.testing.assert_frame_equal(faulty.reset_index(drop=True), calm.reset_index(drop=True))  # nothing doubled
    sql = read_sql_forecasts(f"sqlite:///{(tmp_path / 'faulty' / 'forecasts.sqlite').resolve()}")
    assert len(sql) == len(faulty) == undisturbed["published"].rows
