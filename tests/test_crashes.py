"""Crashes for real: the process is SIGKILLed in the middle of writing windows, a model or forecasts.

No half-written file is ever visible to readers, and the next run completes with the same forecasts as a
run that was never interrupted (training is deterministic on the CPU, and a rerun reuses a model already
trained on the same data).
"""

from __future__ import annotations

import signal
from datetime import date

import pandas as pd
import pytest

from tasks import storage
from tasks.forecast_store import pending_marker, read_parquet_forecasts, reconcile, replace_sql_rows
from tests.conftest import FORECAST_VALUES, REFERENCE_ARGS, published, run_cli


@pytest.mark.parametrize("point", ["windows-between-files", "model-mid-folder", "forecasts-mid-file",
                                   "forecasts-after-commit"])
def test_a_run_killed_mid_write_is_completed_by_the_next_run(prefect_server, reference_inbox, reference_run,
                                                             tmp_path, point):
    data_dir = tmp_path / "store"
    arguments = ("run", "--input", str(reference_inbox), "--data-dir", str(data_dir), *REFERENCE_ARGS)
    crashed = run_cli(prefect_server, *arguments, crash=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]

    # Readers see whole files or nothing: every visible Parquet file and JSON document reads.
    for path in data_dir.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(data_dir).parts):
            if path.suffix == ".parquet":
                storage.read_parquet(path)
            elif path.suffix == ".json":
                storage.read_json(path)
    read_parquet_forecasts(data_dir)  # the dataset skips staged (hidden) files

    again = run_cli(prefect_server, *arguments)
    assert again.returncode == 0, again.stderr[-2000:]
    parquet, sql = published(data_dir)
    pd.testing.assert_frame_equal(parquet[FORECAST_VALUES], published(reference_run)[0][FORECAST_VALUES])
    pd.testing.assert_frame_equal(sql[FORECAST_VALUES], parquet[FORECAST_VALUES], check_dtype=False)
    assert (parquet["model_version"] != "seasonal-naive").all()  # published by a trained model, as before
    assert not [p for p in data_dir.rglob(".*") if p.name.endswith(".tmp") or p.name == ".chunks"]  # swept


def test_parquet_follows_sql_after_a_crash_between_commit_and_rename(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    day = date(2016, 12, 24)
    rows = pd.DataFrame({"series_id": ["a", "a"], "origin": pd.Timestamp(day, tz="UTC"),
                         "timestamp": pd.to_datetime(["2016-12-25", "2016-12-26"], utc=True), "step": [1, 2],
                         "yhat": [1.0, 2.0], "yhat_lower": [0.5, 1.5], "yhat_upper": [1.5, 2.5],
                         "model_version": "v1", "run_id": "run-1"})
    from tasks.forecast_store import publish_forecasts_atomically

    publish_forecasts_atomically(rows, day, tmp_path, url)
    # What a publication killed between its commit and its rename leaves: the pending mark, SQL committed.
    storage.write_json({"run_date": day.isoformat()}, pending_marker(tmp_path, day))
    replace_sql_rows(rows.assign(yhat=[3.0, 4.0], run_id="run-2"), day, url)
    assert read_parquet_forecasts(tmp_path)["run_id"].tolist() == ["run-1", "run-1"]
    assert reconcile(tmp_path, url) == ["2016-12-24"]
    assert read_parquet_forecasts(tmp_path)["yhat"].tolist() == [3.0, 4.0]
    assert reconcile(tmp_path, url) == []  # agreeing stores are left alone
    assert not pending_marker(tmp_path, day).exists()
    publish_forecasts_atomically(rows, day, tmp_path, url)
    assert not pending_marker(tmp_path, day).exists()  # a publication that finished leaves no mark
