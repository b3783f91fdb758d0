"""Same input, settings and seed: the same model and forecasts, bit for bit, from any fresh process, and
from runs that were killed mid-write and completed by the next run.

One uninterrupted `lstm-forecast run` (the reference) is reproduced:
- by a fresh process that differs in what may differ between two runs on a user's machine: the data
  dir's path, the working directory and PYTHONHASHSEED (besides whatever Prefect's threads do);
- after crashes for real: the process is SIGKILLed in the middle of writing windows, a model or forecasts
  (tests/crash.py). No half-written file is ever visible to readers, and the next run completes with the
  reference's forecasts (it retrains, or reuses a model already trained on the same data).
"""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stores import files
from stores.forecasts import pending_marker, read_parquet_forecasts, reconcile, replace_sql_rows
from stores.registry import load_champion
from tests.conftest import FORECAST_VALUES, published, run_cli, write_csv

pytestmark = pytest.mark.xdist_group("test_reproducibility")  # one worker: its module fixtures run once

# Three real series, one small model.
REFERENCE_ARGS = ("--as-of", "2016-12-24", "--horizon", "7", "--lookback", "14", "--max-epochs", "3")


@pytest.fixture(scope="module")
def reference_inbox(tmp_path_factory, sample) -> Path:
    ids = sorted(sample["series_id"].unique())[:3]
    part = sample[sample["series_id"].isin(ids)]
    part = part[part["timestamp"] > part["timestamp"].max() - pd.Timedelta(days=160)]
    return write_csv(part, tmp_path_factory.mktemp("reference-inbox") / "part.csv").parent


@pytest.fixture(scope="module")
def reference_run(prefect_server, reference_inbox, tmp_path_factory) -> Path:
    """The data dir of one uninterrupted `lstm-forecast run` on the reference inbox (PYTHONHASHSEED 0)."""
    data_dir = tmp_path_factory.mktemp("reference") / "store"
    done = run_cli(prefect_server, "run", "--input", str(reference_inbox), "--data-dir", str(data_dir),
                   *REFERENCE_ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    return data_dir


def test_two_fresh_processes_train_identical_models_and_publish_identical_forecasts(
        prefect_server, reference_inbox, reference_run, tmp_path):
    elsewhere = tmp_path / "another place" / "deeper"  # another path, with a space, another depth
    elsewhere.mkdir(parents=True)
    data_dir = elsewhere / "store"
    done = run_cli(prefect_server, "run", "--input", str(reference_inbox), "--data-dir", str(data_dir),
                   *REFERENCE_ARGS, cwd=elsewhere, hash_seed="4242")  # the reference ran with seed 0
    assert done.returncode == 0, done.stderr[-3000:]

    ours, theirs = published(data_dir)[0], published(reference_run)[0]
    pd.testing.assert_frame_equal(ours[FORECAST_VALUES], theirs[FORECAST_VALUES])  # exactly, not approximately
    # A trained model published them (per series: one where seasonal naive won its holdout falls back).
    assert (ours["model_version"] != "seasonal-naive").any()
    pd.testing.assert_series_equal(ours["model_version"] == "seasonal-naive", theirs["model_version"] == "seasonal-naive")

    mine, reference = load_champion(data_dir / "models"), load_champion(reference_run / "models")
    for a, b in zip(mine.model.get_weights(), reference.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for fact in ("val_loss", "epochs_run", "best_epoch", "holdout", "interval", "training_fingerprint"):
        assert mine.metadata[fact] == reference.metadata[fact], fact


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
                files.read_parquet(path)
            elif path.suffix == ".json":
                files.read_json(path)
    read_parquet_forecasts(data_dir)  # the dataset skips staged (hidden) files

    again = run_cli(prefect_server, *arguments)
    assert again.returncode == 0, again.stderr[-2000:]
    parquet, sql = published(data_dir)
    pd.testing.assert_frame_equal(parquet[FORECAST_VALUES], published(reference_run)[0][FORECAST_VALUES])
    pd.testing.assert_frame_equal(sql[FORECAST_VALUES], parquet[FORECAST_VALUES], check_dtype=False)
    assert (parquet["model_version"] != "seasonal-naive").any()  # published by a trained model, as before
    assert not [p for p in data_dir.rglob(".*") if p.name.endswith(".tmp") or p.name == ".chunks"]  # swept


def test_parquet_follows_sql_after_a_crash_between_commit_and_rename(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    day = date(2016, 12, 24)
    rows = pd.DataFrame({"series_id": ["a", "a"], "origin": pd.Timestamp(day, tz="UTC"),
                         "timestamp": pd.to_datetime(["2016-12-25", "2016-12-26"], utc=True), "step": [1, 2],
                         "yhat": [1.0, 2.0], "yhat_lower": [0.5, 1.5], "yhat_upper": [1.5, 2.5],
                         "model_version": "v1", "run_id": "run-1"})
    from stores.forecasts import publish_forecasts_atomically

    publish_forecasts_atomically(rows, day, tmp_path, url)
    # What a publication killed between its commit and its rename leaves: the pending mark, SQL committed.
    files.write_json({"run_date": day.isoformat()}, pending_marker(tmp_path, day))
    replace_sql_rows(rows.assign(yhat=[3.0, 4.0], run_id="run-2"), day, url)
    assert read_parquet_forecasts(tmp_path)["run_id"].tolist() == ["run-1", "run-1"]
    assert reconcile(tmp_path, url) == ["2016-12-24"]
    assert read_parquet_forecasts(tmp_path)["yhat"].tolist() == [3.0, 4.0]
    assert reconcile(tmp_path, url) == []  # agreeing stores are left alone
    assert not pending_marker(tmp_path, day).exists()
    publish_forecasts_atomically(rows, day, tmp_path, url)
    assert not pending_marker(tmp_path, day).exists()  # a publication that finished leaves no mark
