"""Stores on fsspec filesystems: the whole daily flow with its input and data dir on `memory://`, and the
storage seam on a `file://` URL (a second local path reached through fsspec)."""

from __future__ import annotations

import fsspec
import pandas as pd
import pytest

from flows.daily import daily_forecast
from forecasting.settings import load_settings
from stores import files
from stores.forecasts import read_parquet_forecasts, read_sql_forecasts


@pytest.fixture
def memory_fs():
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    yield fs
    fs.store.clear()


def test_daily_flow_runs_with_input_and_stores_on_memory_urls(prefect_server, tmp_path, sample_slice, memory_fs,
                                                             monkeypatch):
    frame = sample_slice.assign(timestamp=sample_slice["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    with memory_fs.open("/inbox/part.csv", "w") as handle:
        frame.to_csv(handle, index=False)
    database = f"sqlite:///{tmp_path / 'forecasts.sqlite'}"
    monkeypatch.setenv("LSTM_FORECAST_DATABASE_URL", database)  # a URL data dir has no default SQLite file
    local_before = sorted(p.name for p in tmp_path.iterdir())

    def run():
        return daily_forecast(input_path="memory://inbox", data_dir="memory://store", horizon=7, lookback=14,
                              max_epochs=3)

    first = run()
    assert first["ingest"].files_new == 1
    store = files.as_path("memory://store")
    forecasts = read_parquet_forecasts(store)
    assert len(forecasts) == 3 * 7 and set(forecasts["series_id"]) == set(sample_slice["series_id"])
    assert len(read_sql_forecasts(database)) == len(forecasts)
    version = first["train"].model_version
    assert memory_fs.exists(f"/store/models/{version}/model.keras")
    assert memory_fs.exists("/store/raw/manifest.json")
    assert not memory_fs.glob("/store/**/.*.tmp")  # nothing staged is left behind

    second = run()  # finds the model trained on this data in memory:// and reuses it
    assert second["ingest"].files_new == 0 and second["train"].reused
    assert second["published"].model_version == first["published"].model_version
    assert len(read_parquet_forecasts(store)) == 3 * 7
    # Nothing was written to the local disk but the database file (no stray data dir).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*local_before, "forecasts.sqlite"])


def test_a_url_data_dir_needs_an_explicit_database():
    with pytest.raises(ValueError, match="set database_url"):
        load_settings(data_dir="memory://store")


def test_storage_seam_on_a_file_url(tmp_path):
    root = files.as_path(f"file://{tmp_path}/second")
    assert not files.is_local(root)
    frame = pd.DataFrame({"series_id": ["a", "b"], "value": [1.0, 2.0]})
    files.write_parquet(frame, root / "x" / "frame.parquet")
    pd.testing.assert_frame_equal(files.read_parquet(root / "x" / "frame.parquet"), frame)
    pd.testing.assert_frame_equal(files.read_parquet(str(root / "x" / "frame.parquet"),
                                                     filters=[("series_id", "in", ["b"])]),
                                  frame.iloc[1:].reset_index(drop=True))
    files.write_json({"b": 1, "a": 2}, root / "meta.json")
    assert files.read_json(root / "meta.json") == {"a": 2, "b": 1}
    with files.atomic_dir(root / "version") as folder:
        (folder / "one.txt").write_text("1")
        (folder / "sub").mkdir()
        (folder / "sub" / "two.txt").write_text("2")
    assert (tmp_path / "second" / "version" / "sub" / "two.txt").read_text() == "2"
    with pytest.raises(FileExistsError):
        with files.atomic_dir(root / "version"):
            pass
    with pytest.raises(RuntimeError), files.atomic_path(root / "failed.json") as staged:
        staged.write_text("half")
        raise RuntimeError("crash before the upload")
    assert not (tmp_path / "second" / "failed.json").exists()  # a failed write leaves nothing
    files.copy_file(root / "meta.json", root / "archive" / "meta.json")
    assert files.content_hash(root / "archive" / "meta.json") == files.content_hash(tmp_path / "second" / "meta.json")
    files.remove_tree(root / "archive")
    assert not (tmp_path / "second" / "archive").exists()
