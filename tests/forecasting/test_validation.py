"""Validation: the Great Expectations suite quarantines bad rows and series with reasons; the rest goes on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.columns import INGEST_SEQ
from forecasting.errors import PipelineError
from forecasting.validation import parse_as_of, prepare_batch, validate


def as_store(frame: pd.DataFrame, seq: int = 0, source: str = "f0") -> pd.DataFrame:
    store = frame[["series_id", "timestamp", "value"]].copy()
    store["source_file"] = source
    store["source_row"] = np.arange(2, len(store) + 2)
    store["raw_timestamp"] = pd.array([None] * len(store), dtype="string")
    store["raw_value"] = pd.array([None] * len(store), dtype="string")
    store[INGEST_SEQ] = seq
    return store


def test_clean_sample_passes_every_expectation(sample):
    result = validate(as_store(sample), None, max_staleness=7)
    assert all(outcome["success"] for outcome in result.outcomes)
    assert len(result.valid) == len(sample) and result.quarantined.empty
    assert result.facts["panel_frequency"] == "D"
    assert result.batch.as_of == pd.Timestamp("2016-12-31", tz="UTC")


def test_bad_rows_are_quarantined_with_file_row_and_value(sample_slice):
    store = as_store(sample_slice)
    store.loc[3, ["timestamp", "raw_timestamp"]] = [pd.NaT, "yesterday"]
    store.loc[4, ["value", "raw_value"]] = [np.nan, "abc"]
    store.loc[5, "value"] = np.inf
    conflict = store.iloc[[6]].assign(value=123456.0, source_row=999)
    off_grid = store.iloc[[7]].assign(timestamp=store["timestamp"].iloc[7] + pd.Timedelta(hours=5),
                                      source_row=1000)
    store = pd.concat([store, conflict, off_grid], ignore_index=True)

    result = validate(store, None, max_staleness=7, file_names={"f0": "day.csv"})
    reasons = result.quarantined.set_index("source_row")["reason"]
    assert "day.csv row 5: timestamp 'yesterday' is not an ISO-8601 timestamp" in reasons[5]
    assert "value 'abc' is not a number" in reasons[6]
    assert "value inf is not finite" in reasons[7]
    assert "conflicting duplicate" in reasons[8] and "conflicting duplicate" in reasons[999]
    assert "off the D grid" in reasons[1000]
    assert len(result.quarantined) == 6
    assert len(result.valid) == len(sample_slice) - 4  # the rest goes on
    assert not {"expect_compound_columns_to_be_unique", "expect_column_values_to_not_be_null"} <= {
        o["expectation"] for o in result.outcomes if o["success"]}


def test_identical_duplicates_collapse_and_later_files_restate(sample_slice):
    first = as_store(sample_slice, seq=0, source="f0")
    again = as_store(sample_slice.iloc[:5], seq=0, source="f0")  # identical rows in the same file
    restated = as_store(sample_slice.iloc[:2].assign(value=-1.0), seq=1, source="f1")
    batch = prepare_batch(pd.concat([first, again, restated], ignore_index=True), None)
    # the two restated keys drop both of their older copies; the other three duplicates collapse
    assert batch.restated_rows == 4 and batch.identical_duplicates == 3
    result = validate(pd.concat([first, again, restated], ignore_index=True), None, 7)
    assert result.quarantined.empty
    keys = result.valid.set_index(["series_id", "timestamp"])["value"]
    first_key = tuple(sample_slice.loc[0, ["series_id", "timestamp"]])
    assert keys[first_key] == -1.0  # the later file's value wins


def test_stale_series_and_other_frequency_are_quarantined_whole(sample_slice):
    ids = sorted(sample_slice["series_id"].unique())
    frame = sample_slice[~((sample_slice["series_id"] == ids[0])
                           & (sample_slice["timestamp"] > sample_slice["timestamp"].max() - pd.Timedelta(days=30)))]
    weekly = sample_slice[sample_slice["series_id"] == ids[1]].iloc[::7]
    frame = pd.concat([frame[frame["series_id"] != ids[1]], weekly], ignore_index=True)
    result = validate(as_store(frame), None, max_staleness=7)
    by_series = result.quarantined.groupby("series_id")["reason"].first()
    assert "is stale" in by_series[ids[0]] and "30 periods before the as-of" in by_series[ids[0]]
    assert "frequency 7D, the panel's is D" in by_series[ids[1]]
    assert set(result.valid["series_id"]) == {ids[2]}


@pytest.mark.parametrize(("freq", "late", "stale_by_default"), [("h", 10, False), ("h", 49, True),
                                                                ("D", 7, False), ("D", 8, True)])
def test_the_staleness_limit_defaults_by_frequency(freq, late, stale_by_default):
    """Two days of hourly data (48 periods), a week of daily data (7): an hourly feed's outage at the as-of
    keeps its series; an explicit max_staleness holds for every frequency."""
    stamps = pd.date_range("2024-01-01", periods=200, freq=freq, tz="UTC")
    fresh = pd.DataFrame({"series_id": "fresh", "timestamp": stamps, "value": 10.0 + np.arange(200) % 7})
    late_rows = fresh.iloc[:-late].assign(series_id="late")
    store = as_store(pd.concat([fresh, late_rows], ignore_index=True))

    by_default = validate(store, None, max_staleness=None)
    assert ("late" not in set(by_default.valid["series_id"])) == stale_by_default
    assert by_default.facts["max_staleness"] == (48 if freq == "h" else 7)
    explicit = validate(store, None, max_staleness=late - 1)
    assert set(explicit.valid["series_id"]) == {"fresh"}
    assert f"{late} periods before the as-of" in explicit.quarantined["reason"].iloc[0]


@pytest.mark.parametrize("spoil", ["missing", "not finite", "off the grid"])
def test_a_series_is_as_fresh_as_its_last_valid_row(sample_slice, spoil):
    """Rows the row checks quarantine do not keep a series fresh: its last 30 days spoiled, a series is
    stale (not forecast through 30 days from its last valid row), whatever spoiled them."""
    ids = sorted(sample_slice["series_id"].unique())
    frame, last_valid = sample_slice.copy(), sample_slice["timestamp"].max() - pd.Timedelta(days=30)
    spoiled = (frame["series_id"] == ids[0]) & (frame["timestamp"] > last_valid)
    if spoil == "off the grid":  # e.g. the feed's latest rows in another time zone
        frame.loc[spoiled, "timestamp"] += pd.Timedelta(hours=5)
    else:
        frame.loc[spoiled, "value"] = np.nan if spoil == "missing" else np.inf
    result = validate(as_store(frame), None, max_staleness=7)
    assert set(result.valid["series_id"]) == set(ids[1:])
    reasons = result.quarantined.loc[result.quarantined["series_id"] == ids[0], "reason"]
    assert reasons.str.contains(f"is stale: last valid observation {last_valid.isoformat()} is 30 periods before",
                                regex=False).any()


def test_a_row_dated_in_the_future_is_quarantined_and_the_as_of_ignores_it(sample_slice):
    """A typo like 2099 neither becomes the run's as-of (every other series would be stale) nor is dropped
    silently; an as-of the user gives beyond the clock keeps its rows (synthetic or test data)."""
    ids = sorted(sample_slice["series_id"].unique())
    typo = pd.DataFrame({"series_id": [ids[0]], "timestamp": [pd.Timestamp("2099-01-01", tz="UTC")], "value": [5.0]})
    store = as_store(pd.concat([sample_slice, typo], ignore_index=True))
    now = pd.Timestamp("2017-01-01T12:00", tz="UTC")

    result = validate(store, None, max_staleness=7, now=now)
    assert result.batch.as_of == sample_slice["timestamp"].max()
    assert len(result.valid) == len(sample_slice) and set(result.valid["series_id"]) == set(ids)
    assert len(result.quarantined) == 1 and "2099-01-01T00:00:00+00:00" in result.quarantined["reason"].iloc[0]
    assert "is in the future" in result.quarantined["reason"].iloc[0]
    assert result.batch.after_as_of == 0

    later = as_store(sample_slice.assign(timestamp=sample_slice["timestamp"] + pd.DateOffset(years=20)))
    as_of = later["timestamp"].max()
    kept = validate(later, as_of, max_staleness=7, now=now)
    assert kept.quarantined.empty and len(kept.valid) == len(sample_slice)

    with pytest.raises(PipelineError, match="valid timestamp up to a day after this run's clock"):
        validate(as_store(typo), None, max_staleness=7, now=now)


def test_an_off_grid_day_is_told_how_it_likely_got_there(sample_slice):
    """A day's row at 05:00 UTC is the usual trace of a date written as a local midnight with an offset."""
    ids = sorted(sample_slice["series_id"].unique())
    frame = sample_slice.copy()
    last = (frame["series_id"] == ids[0]) & (frame["timestamp"] == frame["timestamp"].max())
    frame.loc[last, "timestamp"] += pd.Timedelta(hours=5)
    reason = validate(as_store(frame), None, max_staleness=7).quarantined["reason"].iloc[0]
    assert "off the D grid" in reason and "a date with a time zone offset?" in reason


def test_as_of_cuts_the_batch(sample_slice):
    as_of = sample_slice["timestamp"].max() - pd.Timedelta(days=10)
    result = validate(as_store(sample_slice), parse_as_of(as_of.strftime("%Y-%m-%d")), 7)
    assert result.valid["timestamp"].max() == as_of
    assert result.batch.after_as_of == 3 * 10


def test_nothing_valid_is_a_clear_error():
    with pytest.raises(PipelineError, match="store is empty"):
        validate(as_store(pd.DataFrame(columns=["series_id", "timestamp", "value"])), None, 7)


@pytest.mark.parametrize("text", ["tomorrow", "2016-13-45"])
def test_bad_as_of_is_named(text):
    with pytest.raises(PipelineError, match="not an ISO-8601"):
        parse_as_of(text)


def test_as_of_naive_means_utc():
    assert parse_as_of("2016-12-31") == pd.Timestamp("2016-12-31", tz="UTC")
    assert parse_as_of("2016-12-31T02:00:00+02:00") == pd.Timestamp("2016-12-31", tz="UTC")


def test_a_single_point_series_is_named_as_too_short_to_infer(sample_slice):
    lonely = pd.DataFrame({"series_id": pd.array(["lonely"], dtype="string"),
                           "timestamp": [sample_slice["timestamp"].max()], "value": [5.0]})
    result = validate(as_store(pd.concat([sample_slice, lonely], ignore_index=True)), None, 7)
    reason = result.quarantined.set_index("series_id").loc["lonely", "reason"]
    assert "fewer than 2 valid timestamps" in reason
