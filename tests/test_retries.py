"""Retries are for transient faults only: an I/O error is retried, bad input is not."""

from __future__ import annotations

import pytest
from prefect import flow

from forecasting.errors import PipelineError
from forecasting.settings import load_settings
from tasks.ingest import ingest_files
import tasks.ingest as ingest_module
from tests.conftest import write_csv


def test_ingest_retries_io_errors_then_completes(prefect_server, tmp_path, sample_slice, monkeypatch):
    write_csv(sample_slice, tmp_path / "inbox" / "day.csv")
    settings = load_settings(input_path=tmp_path / "inbox", data_dir=tmp_path / "store")
    real_hash, calls = ingest_module.files.content_hash, []

    def flaky_hash(path):
        calls.append(path)
        if len(calls) <= 2:
            raise OSError("simulated: network share went away")
        return real_hash(path)

    monkeypatch.setattr(ingest_module.files, "content_hash", flaky_hash)

    @flow
    def only_ingest():
        return ingest_files.with_options(retry_delay_seconds=0)(settings)

    summary = only_ingest()
    assert len(calls) == 3  # two failures, then success
    assert summary["files_new"] == 1 and summary["rows_new"] == len(sample_slice)


def test_ingest_does_not_retry_bad_input(prefect_server, tmp_path, monkeypatch):
    settings = load_settings(input_path=tmp_path / "absent", data_dir=tmp_path / "store")
    real_discover, calls = ingest_module.discover_files, []

    def counting_discover(path):
        calls.append(path)
        return real_discover(path)

    monkeypatch.setattr(ingest_module, "discover_files", counting_discover)

    @flow
    def only_ingest():
        return ingest_files.with_options(retry_delay_seconds=0)(settings)

    with pytest.raises(PipelineError, match="does not exist"):
        only_ingest()
    assert len(calls) == 1
