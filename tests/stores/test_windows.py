"""The windows store: a plan written and read back is the same plan; an earlier run's windows are a base
only when nothing they depend on changed; gap-fill's chunk staging never leaves files behind."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.settings import Settings
from forecasting.windows import TRAIN, VALIDATION, WindowSource, plan_windows
from stores import files
from stores.snapshots import STATE_FILE, chunk_staging, read_chunks, write_chunk
from stores.windows import find_windows_base, read_training_windows, window_settings, windows_dir, write_windows


def written_plan(sample, data_dir, run_date=date(2016, 6, 1)):
    clean = sample.assign(imputed=False)
    plan = plan_windows(clean, "D", 28, 14, val_fraction=0.2)
    settings = Settings(data_dir=data_dir)
    folder = windows_dir(data_dir, run_date)
    write_windows(folder, plan, {"as_of": "2016-06-01T00:00:00+00:00", "frequency": "D",
                                 "settings": window_settings(settings, 28, 14)})
    return clean, plan, settings, folder


def test_windows_read_back_as_written(sample, tmp_path):
    _, plan, _, folder = written_plan(sample, tmp_path)
    read = read_training_windows(folder, 28, 14, plan.features)
    expected = WindowSource.from_plan(plan, 28, 14)
    for split in (TRAIN, VALIDATION):
        assert read.source.count(split) == expected.count(split) > 0
        starts = read.source.starts[split][:50]
        for got, want in zip(read.source.window(starts), expected.window(starts)):
            np.testing.assert_array_equal(got, want)
    pd.testing.assert_frame_equal(read.index, plan.index.reset_index(drop=True), check_dtype=False)
    assert read.scalers.to_dict() == plan.scalers.to_dict()


@pytest.mark.parametrize("change, usable", [({}, True), ({"val_fraction": 0.3}, False),
                                            ({"target_transform": "none"}, False)])
def test_an_earlier_runs_windows_are_a_base_only_with_the_same_settings(sample, tmp_path, change, usable):
    clean, _, settings, folder = written_plan(sample, tmp_path)
    clean_dir = files.partition_dir(tmp_path / "clean", date(2016, 6, 2))
    files.write_json({"base_run_date": "2016-06-01", "base_as_of": "2016-06-01T00:00:00+00:00",
                      "rebuilt_series": ["a"]}, clean_dir / STATE_FILE)
    changed = settings.model_copy(update=change)
    base = find_windows_base(changed, str(clean_dir / "series.parquet"), "D", 28, 14, clean)
    assert (base is not None) is usable
    if usable:
        assert base.folder == folder and base.rebuilt == {"a"}
    assert find_windows_base(settings, str(clean_dir / "series.parquet"), "h", 28, 14, clean) is None


def test_chunk_staging_starts_empty_and_is_removed_even_after_a_failure(sample, tmp_path):
    run_date = date(2016, 6, 1)
    with chunk_staging(tmp_path, run_date) as staging:
        (staging / "leftover.parquet").write_bytes(b"interrupted")
    with pytest.raises(RuntimeError):
        with chunk_staging(tmp_path, run_date) as staging:
            assert list(staging.iterdir()) == []
            parts = [write_chunk(staging, n, sample.iloc[n * 10:(n + 1) * 10], sample.iloc[0:0]) for n in range(2)]
            clean, quarantined = read_chunks(parts)
            pd.testing.assert_frame_equal(clean, sample.iloc[:20].reset_index(drop=True), check_dtype=False)
            assert quarantined.empty
            raise RuntimeError("a chunk failed")
    assert not staging.exists()
