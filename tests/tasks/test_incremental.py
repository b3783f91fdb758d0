"""Incremental daily runs: a run after the first checks, fills and windows only what is new, and ends
with the same valid rows, clean series and windows as a run that redoes all history."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from flows.daily import daily_forecast
from forecasting.gapfill import gapfill, gapfill_increment
from forecasting.settings import Settings
from forecasting.validation import series_state, validate, validate_incremental
from stores import files
from stores.archive import ingest, read_series_store
from stores.snapshots import Base, full_run_reason
from tests.conftest import write_csv

HORIZON, LOOKBACK = 7, 14


def _base(result, store) -> Base:
    return Base(run_date=result.batch.as_of.date(), as_of=result.batch.as_of, full_as_of=result.batch.as_of,
                max_seq=int(store["ingest_seq"].max()), panel_frequency=result.facts["panel_frequency"], settings={},
                series=series_state(result.valid, result.facts))


def test_incremental_validation_checks_new_rows_and_rebuilds_changed_series(tmp_path, sample):
    ids = sorted(sample["series_id"].unique())[:5]
    panel = sample[sample["series_id"].isin(ids) & (sample["timestamp"] > "2016-09-01")].reset_index(drop=True)
    last = panel["timestamp"].max()
    day = pd.Timedelta(days=1)
    history = panel[panel["timestamp"] < last]
    history = history[~((history["series_id"] == ids[0]) & (history["timestamp"] > last - 3 * day))]  # stale tomorrow
    inbox = tmp_path / "inbox"
    write_csv(history, inbox / "a.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")
    first = validate(store, None, 2)
    base = _base(first, store)

    new = panel[(panel["timestamp"] == last) & (panel["series_id"] != ids[0])].copy()
    new.loc[new["series_id"] == ids[1], "value"] = 1e30  # an absurd outlier in the new day
    brand_new = pd.DataFrame({"series_id": ["brand-new"] * 20, "timestamp": pd.date_range(end=last, periods=20, freq="D"),
                              "value": np.arange(20.0)})
    restated = panel[(panel["series_id"] == ids[2]) & (panel["timestamp"] == last - 10 * day)].assign(value=123.0)
    off_grid = pd.DataFrame({"series_id": [ids[3]], "timestamp": [last - pd.Timedelta(hours=5)], "value": [1.0]})
    write_csv(pd.concat([new, brand_new, restated, off_grid]), inbox / "b.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")

    full = validate(store, None, 2)
    incremental, increment, state = validate_incremental(store, base, first.valid, last, 2)

    # Checked: the new day's rows of carried series, and every row of the rebuilt ones, nothing else.
    assert increment.rebuilt == sorted(["brand-new", ids[0], ids[2]])
    assert increment.reasons == {"new or previously quarantined": 1, "late or restated rows": 1, "stale": 1,
                                 "frequency changed": 0}
    rebuilt_rows = store["series_id"].isin(increment.rebuilt).sum()
    assert len(incremental.batch.rows) < rebuilt_rows + len(new) + len(off_grid) + 1
    assert len(incremental.batch.rows) < len(full.batch.rows) / 2
    # Same valid rows, same quarantine decisions as validating everything again.
    pd.testing.assert_frame_equal(incremental.valid, full.valid)
    assert sorted(incremental.quarantined["series_id"].unique()) == sorted(full.quarantined["series_id"].unique())
    assert len(incremental.quarantined) == len(full.quarantined)
    reasons = " ".join(incremental.quarantined["reason"])
    assert "absurd outlier" in reasons and "off the D grid" in reasons and "is stale" in reasons
    assert 123.0 in incremental.valid["value"].to_numpy()  # the restatement won
    assert set(state.index) == set(incremental.valid["series_id"])


def test_new_rows_without_values_do_not_keep_a_series_fresh(tmp_path, sample):
    """A series whose new rows are all missing or non-finite is as stale in an incremental run as in a full one."""
    ids = sorted(sample["series_id"].unique())[:3]
    panel = sample[sample["series_id"].isin(ids) & (sample["timestamp"] > "2016-09-01")].reset_index(drop=True)
    cut = panel["timestamp"].max() - pd.Timedelta(days=10)
    inbox = tmp_path / "inbox"
    write_csv(panel[panel["timestamp"] <= cut], inbox / "a.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")
    first = validate(store, None, 7)
    new = panel[panel["timestamp"] > cut].copy()
    spoiled = new["series_id"] == ids[0]
    new.loc[spoiled, "value"] = np.where(np.arange(spoiled.sum()) % 2, np.nan, np.inf)
    write_csv(new, inbox / "b.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")

    full = validate(store, None, 7)
    incremental, increment, _ = validate_incremental(store, _base(first, store), first.valid,
                                                     panel["timestamp"].max(), 7)
    assert increment.rebuilt == [ids[0]] and increment.reasons["stale"] == 1
    assert set(full.valid["series_id"]) == set(ids[1:])
    pd.testing.assert_frame_equal(incremental.valid, full.valid)
    assert incremental.quarantined["reason"].str.contains("is stale: last valid observation").sum() == \
        full.quarantined["reason"].str.contains("is stale: last valid observation").sum() > 0


def test_an_incremental_run_quarantines_a_row_dated_in_the_future_like_a_full_run(tmp_path, sample):
    ids = sorted(sample["series_id"].unique())[:3]
    panel = sample[sample["series_id"].isin(ids) & (sample["timestamp"] > "2016-09-01")].reset_index(drop=True)
    last, now = panel["timestamp"].max(), pd.Timestamp("2017-01-01T08:00", tz="UTC")
    inbox = tmp_path / "inbox"
    write_csv(panel[panel["timestamp"] < last], inbox / "a.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")
    first = validate(store, None, 7, now=now)
    typo = pd.DataFrame({"series_id": [ids[1]], "timestamp": [pd.Timestamp("2099-12-31", tz="UTC")], "value": [1.0]})
    write_csv(pd.concat([panel[panel["timestamp"] == last], typo]), inbox / "b.csv")
    ingest(inbox, tmp_path / "store")
    store = read_series_store(tmp_path / "store")

    full = validate(store, None, 7, now=now)
    incremental, increment, _ = validate_incremental(store, _base(first, store), first.valid, last, 7, now=now)
    assert full.batch.as_of == last and increment.rebuilt == []
    pd.testing.assert_frame_equal(incremental.valid, full.valid)
    for result in (full, incremental):
        assert len(result.quarantined) == 1 and "is in the future" in result.quarantined["reason"].iloc[0]


@pytest.mark.parametrize("method", ["linear", "time", "ffill", "bfill", "seasonal", "seasonal_linear"])
def test_incremental_gapfill_matches_filling_everything(sample, rng, method):
    ids = sorted(sample["series_id"].unique())[:4]
    valid = sample[sample["series_id"].isin(ids) & (sample["timestamp"] > "2016-06-01")]
    valid = valid[rng.random(len(valid)) > 0.1].reset_index(drop=True)  # holes everywhere
    cut = valid["timestamp"].max() - pd.Timedelta(days=12)
    base = gapfill(valid[valid["timestamp"] <= cut].reset_index(drop=True), "D", method, max_gap=14)
    # The increment: twelve new days, a hole run of 3 days in one series, a series new today.
    new_days = valid[valid["timestamp"] > cut]
    new_days = new_days[~((new_days["series_id"] == ids[0]) & new_days["timestamp"].between(cut + pd.Timedelta(days=2),
                                                                                              cut + pd.Timedelta(days=4)))]
    newcomer = valid[valid["series_id"] == ids[3]].assign(series_id="newcomer")
    current = pd.concat([valid[valid["timestamp"] <= cut], new_days, newcomer]).astype({"series_id": "string"})
    current = current.sort_values(["series_id", "timestamp"]).reset_index(drop=True)

    result, full_ids, processed = gapfill_increment(current, base.clean, set(), "D", method, max_gap=14)
    expected = gapfill(current, "D", method, max_gap=14)

    assert full_ids == ["newcomer"]
    assert processed == len(expected.clean) - len(base.clean)  # only the new stretch (and the newcomer)
    if method == "seasonal":  # a hole whose season-back point was itself a hole may differ: same shape only
        pd.testing.assert_frame_equal(result.clean.drop(columns="value"), expected.clean.drop(columns="value"))
    else:
        pd.testing.assert_frame_equal(result.clean, expected.clean, check_exact=False, rtol=1e-12)


def new_nine_day_gap(sample, since: str):
    """Three sample series from `since`, gap-filled up to 20 days before their end; then 9 days out of the
    second right after that cut. Returns (ids, cut, incremental gap-fill result, full ids, full gap-fill)."""
    ids = sorted(sample["series_id"].unique())[:3]
    valid = sample[sample["series_id"].isin(ids) & (sample["timestamp"] > since)].reset_index(drop=True)
    cut = valid["timestamp"].max() - pd.Timedelta(days=20)
    base = gapfill(valid[valid["timestamp"] <= cut].reset_index(drop=True), "D", "linear", max_gap=5)
    gap = (valid["series_id"] == ids[1]) & valid["timestamp"].between(cut + pd.Timedelta(days=1), cut + pd.Timedelta(days=9))
    current = valid[~gap].reset_index(drop=True)
    result, full_ids, _ = gapfill_increment(current, base.clean, set(), "D", "linear", max_gap=5)
    return ids, cut, result, full_ids, gapfill(current, "D", "linear", max_gap=5)


def test_incremental_gapfill_handles_a_new_long_gap_like_a_full_fill(sample):
    # 16 days before the gap: a 9-day gap is over half of them, so it cuts rather than being bridged.
    ids, cut, result, full_ids, expected = new_nine_day_gap(sample, "2016-11-25")
    assert full_ids == [ids[1]]
    pd.testing.assert_frame_equal(result.clean, expected.clean)
    assert set(result.quarantined["series_id"]) == {ids[1]} and "gap of 9 periods" in result.quarantined["reason"].iloc[0]
    after_gap = result.clean[result.clean["series_id"] == ids[1]]
    assert after_gap["timestamp"].min() == cut + pd.Timedelta(days=10)  # the series goes on after the gap


def test_full_runs_come_back_on_cadence_and_on_setting_changes():
    settings = Settings(full_retrain_days=7)
    day = pd.Timestamp("2016-12-01", tz="UTC")
    base = Base(run_date=day.date(), as_of=day, full_as_of=day, max_seq=0, panel_frequency="D",
                settings={"max_staleness": settings.max_staleness, "max_robust_z": settings.max_robust_z},
                series=pd.DataFrame())
    assert full_run_reason(settings, base, day + pd.Timedelta(days=1)) is None
    assert "full_retrain_days" in full_run_reason(settings, base, day + pd.Timedelta(days=7))
    assert "no earlier run" in full_run_reason(settings, None, day)
    assert "settings changed" in full_run_reason(Settings(max_robust_z=20), base, day + pd.Timedelta(days=1))
    assert "switched off" in full_run_reason(Settings(incremental=False), base, day + pd.Timedelta(days=1))


def _run(inbox, data_dir, as_of):
    return daily_forecast(input_path=str(inbox), data_dir=str(data_dir), as_of=as_of, horizon=HORIZON,
                          lookback=LOOKBACK, max_epochs=1)


def test_the_daily_flow_after_the_first_processes_only_the_new_day(prefect_server, tmp_path, sample_slice,
                                                                   monkeypatch):
    inbox = tmp_path / "inbox"
    holes = sample_slice.sample(10, random_state=0).index
    data = sample_slice.drop(index=holes)
    last = data["timestamp"].max()
    write_csv(data[data["timestamp"] < last], inbox / "history.csv")
    first = _run(inbox, tmp_path / "store", None)
    assert [first[s].mode for s in ("validate", "gapfill", "windows")] == ["full"] * 3

    write_csv(data[data["timestamp"] == last], inbox / "today.csv")
    second = _run(inbox, tmp_path / "store", None)
    new_rows = int((data["timestamp"] == last).sum())
    assert [second[s].mode for s in ("validate", "gapfill", "windows")] == ["incremental"] * 3
    assert second["validate"].rows_checked == new_rows and second["validate"].series_rebuilt == 0
    assert second["gapfill"].rows_processed == new_rows
    assert second["windows"].rows_processed == new_rows
    assert second["windows"].scalers_fitted_as_of == first["validate"].as_of  # one cycle, one scaler fit

    # A run that redoes all history on the same files ends with the same stores.
    monkeypatch.setenv("LSTM_FORECAST_INCREMENTAL", "false")
    full = _run(inbox, tmp_path / "full", None)
    assert full["validate"].mode == full["gapfill"].mode == full["windows"].mode == "full"
    pd.testing.assert_frame_equal(files.read_parquet(second["validate"].valid_path),
                                  files.read_parquet(full["validate"].valid_path))
    pd.testing.assert_frame_equal(files.read_parquet(second["gapfill"].clean_path),
                                  files.read_parquet(full["gapfill"].clean_path))
    folder, full_folder = files.as_path(second["windows"].folder), files.as_path(full["windows"].folder)
    pd.testing.assert_frame_equal(files.read_parquet(folder / "index.parquet"),
                                  files.read_parquet(full_folder / "index.parquet"))
    raw = ["series_id", "timestamp", "value", "imputed"]
    pd.testing.assert_frame_equal(files.read_parquet(folder / "series.parquet", columns=raw),
                                  files.read_parquet(full_folder / "series.parquet", columns=raw))
    assert second["windows"].cutoff == full["windows"].cutoff

    # A later run builds on these folders only if they hold the base's own as-of (a folder of the same
    # run date rewritten by another as-of, or left older by an interrupted run, is not a base).
    from stores.snapshots import clean_base

    settings = Settings(data_dir=tmp_path / "store", horizon=HORIZON, lookback=LOOKBACK, max_epochs=1)
    validated = replace(second["validate"], mode="incremental", base_run_date=second["validate"].run_date,
                        base_as_of=second["validate"].as_of)
    assert clean_base(settings, validated) == files.as_path(second["gapfill"].clean_path).parent
    assert clean_base(settings, replace(validated, base_as_of=first["validate"].as_of)) is None


def test_incremental_validation_reads_only_files_that_can_hold_news():
    from stores.archive import has_news

    day = pd.Timestamp("2016-12-01", tz="UTC")
    base = Base(run_date=day.date(), as_of=day, full_as_of=day, max_seq=3, panel_frequency="D", settings={},
                series=pd.DataFrame())
    assert has_news({"seq": 4, "max_timestamp": "2016-11-01T00:00:00+00:00"}, base)  # a later file
    assert not has_news({"seq": 2, "max_timestamp": "2016-12-01T00:00:00+00:00"}, base)  # all seen
    assert has_news({"seq": 2, "max_timestamp": "2016-12-05T00:00:00+00:00"}, base)  # rows left after the as-of
    assert has_news({"seq": 2}, base)  # an older manifest entry that does not say: read it
    assert not has_news({"seq": 2, "max_timestamp": None}, base)  # no parseable timestamp at all


def test_incremental_gapfill_bridges_a_new_long_gap_like_a_full_fill(sample):
    # 71 days before the 9-day gap: under half of them, so the gap is filled (marked) and nothing is set aside.
    ids, _, result, _, expected = new_nine_day_gap(sample, "2016-10-01")
    pd.testing.assert_frame_equal(result.clean, expected.clean)
    assert result.quarantined.empty and result.clean.loc[result.clean["series_id"] == ids[1], "imputed"].sum() == 9
