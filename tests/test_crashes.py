"""Crashes for real: the process is SIGKILLed in the middle of writing windows, a model or forecasts.

No half-written file is ever visible to readers, and the next run completes with the same forecasts as a
run that was never interrupted (training is deterministic on the CPU, and a rerun reuses a model already
trained on the same data).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date

import pandas as pd
import pytest

from tasks import storage
from tasks.columns import FORECAST_COLUMNS
from tasks.forecast_store import (pending_marker, read_parquet_forecasts, read_sql_forecasts, reconcile,
                                  replace_sql_rows)
from tasks.settings import PROJECT_ROOT
from tests.conftest import write_csv

AS_OF = "2016-12-24"
ARGS = ["--as-of", AS_OF, "--horizon", "7", "--lookback", "14", "--max-epochs", "3"]
VALUES = [c for c in FORECAST_COLUMNS if c not in ("run_id", "model_version")]  # names differ per run


def cli(prefect_server: str, *args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.crash", crash, *args] if crash else \
        [sys.executable, "-m", "flows.cli", *args]
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)


def published(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    parquet = read_parquet_forecasts(data_dir).sort_values(["series_id", "step"]).reset_index(drop=True)
    sql = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    return parquet, sql.sort_values(["series_id", "step"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory, sample):
    ids = sorted(sample["series_id"].unique())[:3]
    part = sample[sample["series_id"].isin(ids)]
    part = part[part["timestamp"] > part["timestamp"].max() - pd.Timedelta(days=160)]
    return write_csv(part, tmp_path_factory.mktemp("inbox") / "part.csv").parent


@pytest.fixture(scope="module")
def uninterrupted(prefect_server, inbox, tmp_path_factory) -> pd.DataFrame:
    data_dir = tmp_path_factory.mktemp("reference")
    done = cli(prefect_server, "run", "--input", str(inbox), "--data-dir", str(data_dir), *ARGS)
    assert done.returncode == 0, done.stderr[-2000:]
    return published(data_dir)[0]


@pytest.mark.parametrize("point", ["windows-between-files", "model-mid-folder", "forecasts-mid-file",
                                   "forecasts-after-commit"])
def test_a_run_killed_mid_write_is_completed_by_the_next_run(prefect_server, inbox, uninterrupted, tmp_path,
                                                             point):
    data_dir = tmp_path / "store"
    crashed = cli(prefect_server, "run", "--input", str(inbox), "--data-dir", str(data_dir), *ARGS, crash=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]

    # Readers see whole files or nothing: every visible Parquet file and JSON document reads.
    for path in data_dir.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(data_dir).parts):
            if path.suffix == ".parquet":
                storage.read_parquet(path)
            elif path.suffix == ".json":
                storage.read_json(path)
    read_parquet_forecasts(data_dir)  # the dataset skips staged (hidden) files

    again = cli(prefect_server, "run", "--input", str(inbox), "--data-dir", str(data_dir), *ARGS)
    assert again.returncode == 0, again.stderr[-2000:]
    parquet, sql = published(data_dir)
    pd.testing.assert_frame_equal(parquet[VALUES], uninterrupted[VALUES])
    pd.testing.assert_frame_equal(sql[VALUES], parquet[VALUES], check_dtype=False)
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
