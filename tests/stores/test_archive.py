"""Ingestion: parsing the contract, archiving unchanged, never ingesting a file twice, rejecting bad files."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.errors import PipelineError, RawFileError
from forecasting.parsing import read_raw_file
from stores import files
from stores.archive import discover_files, ingest, no_usable_input, read_manifest, read_series_store
from tests.conftest import write_csv


def test_parses_contract_with_lineage_and_keeps_unparseable_text(tmp_path):
    path = tmp_path / "day.csv"
    path.write_text("series_id,timestamp,value,temp\n"
                    "a,2020-01-01,1.5,3\n"
                    "a,yesterday,2,4\n"
                    "b,2020-01-01T05:00:00+02:00,abc,\n")
    rows, notes = read_raw_file(path)
    assert notes == []
    assert rows["series_id"].tolist() == ["a", "a", "b"]
    # naive means UTC; offsets are converted to UTC
    assert rows["timestamp"].iloc[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert rows["timestamp"].iloc[2] == pd.Timestamp("2020-01-01T03:00", tz="UTC")
    assert pd.isna(rows["timestamp"].iloc[1]) and rows["raw_timestamp"].iloc[1] == "yesterday"
    assert pd.isna(rows["value"].iloc[2]) and rows["raw_value"].iloc[2] == "abc"
    assert rows["source_row"].tolist() == [2, 3, 4]  # CSV line numbers, header is line 1
    assert rows["temp"].tolist()[:2] == [3.0, 4.0]


def test_non_numeric_covariate_is_ignored_with_a_note(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("series_id,timestamp,value,weather\ns,2020-01-01,1,rain\n")
    rows, notes = read_raw_file(path)
    assert "weather" not in rows.columns
    assert notes and "'weather' is not numeric" in notes[0] and "'rain'" in notes[0]


def test_a_column_without_a_name_is_not_a_covariate(tmp_path):
    """`DataFrame.to_csv()` writes its index as a first column with an empty header: row numbers, not data."""
    path = tmp_path / "indexed.csv"
    pd.DataFrame({"series_id": ["a", "a"], "timestamp": ["2020-01-01", "2020-01-02"], "value": [1.0, 2.0],
                  "temp": [3.0, 4.0]}).to_csv(path)
    rows, notes = read_raw_file(path)
    assert [c for c in rows.columns if c not in ("raw_timestamp", "raw_value", "source_row")] == \
        ["series_id", "timestamp", "value", "temp"]
    assert len(notes) == 1 and "without a name ignored ('unnamed: 0'" in notes[0]


def test_header_names_are_matched_case_and_space_insensitively(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(" Series_ID , Timestamp ,VALUE\na,2020-01-01,1\n")
    rows, _ = read_raw_file(path)
    assert rows["value"].tolist() == [1.0]


def test_local_midnights_are_read_as_calendar_dates(tmp_path):
    """Days exported from a zone with daylight saving: midnight at -05:00 in winter, -04:00 in summer.
    Converted to UTC they alternated between 05:00 and 04:00 and half of them fell off the daily grid."""
    days = pd.date_range("2016-03-10", "2016-03-16", freq="D", tz="America/New_York")
    expected = pd.date_range("2016-03-10", "2016-03-16", freq="D", tz="UTC").astype("datetime64[us, UTC]").tolist()
    (tmp_path / "days.csv").write_text("series_id,timestamp,value\n" + "".join(
        f"a,{day.isoformat()},{k}\n" for k, day in enumerate(days)))
    rows, _ = read_raw_file(tmp_path / "days.csv")
    assert rows["timestamp"].tolist() == expected
    pd.DataFrame({"series_id": "a", "timestamp": days, "value": 1.0}).to_parquet(tmp_path / "days.parquet")
    rows, _ = read_raw_file(tmp_path / "days.parquet")
    assert rows["timestamp"].tolist() == expected
    # Hours keep their instants: an hourly series is converted to UTC as before.
    hours = pd.date_range("2016-03-12", periods=30, freq="h", tz="America/New_York")
    (tmp_path / "hours.csv").write_text("series_id,timestamp,value\n"
                                        + "".join(f"a,{h.isoformat()},1\n" for h in hours))
    rows, _ = read_raw_file(tmp_path / "hours.csv")
    assert rows["timestamp"].tolist() == hours.tz_convert("UTC").astype("datetime64[us, UTC]").tolist()
    # So does one hour's file of an hourly feed, though its every row is a local midnight.
    (tmp_path / "midnight.csv").write_text("series_id,timestamp,value\na,2016-03-12T00:00:00-05:00,1\n"
                                           "b,2016-03-12T00:00:00-05:00,2\n")
    rows, _ = read_raw_file(tmp_path / "midnight.csv")
    assert rows["timestamp"].tolist() == [pd.Timestamp("2016-03-12T05:00", tz="UTC")] * 2


@pytest.mark.parametrize("separator", [";", "\t"])
def test_semicolon_and_tab_separated_files_read_like_commas(tmp_path, separator):
    """Spreadsheets in many locales export semicolons, databases tabs: the header line tells which."""
    lines = ["series_id,timestamp,value,temp", "a,2020-01-01,1.5,3", "a,2020-01-02,abc,4", "b x,2020-01-01,2,"]
    (tmp_path / "comma.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "other.csv").write_text("\n".join(line.replace(",", separator) for line in lines) + "\n")
    expected, _ = read_raw_file(tmp_path / "comma.csv")
    rows, notes = read_raw_file(tmp_path / "other.csv")
    assert notes == []
    pd.testing.assert_frame_equal(rows, expected)


def test_decimal_commas_are_read_in_semicolon_files_only(tmp_path):
    """Locales that separate fields with semicolons write 1,5 for 1.5; in a comma file "1,000" stays text."""
    (tmp_path / "eu.csv").write_text("series_id;timestamp;value;temp\na, b;2020-01-01;1,5;-2,25\na, b;2020-01-02;2;3\n")
    rows, notes = read_raw_file(tmp_path / "eu.csv")
    assert rows["value"].tolist() == [1.5, 2.0] and rows["temp"].tolist() == [-2.25, 3.0] and notes == []
    assert rows["series_id"].tolist() == ["a, b", "a, b"]  # ids are text: their commas stay
    # Points and commas together cannot be told apart safely: the value is quarantined with its text.
    (tmp_path / "mixed.csv").write_text("series_id;timestamp;value\na;2020-01-01;1.234,5\na;2020-01-02;2\n")
    rows, _ = read_raw_file(tmp_path / "mixed.csv")
    assert pd.isna(rows["value"].iloc[0]) and rows["raw_value"].iloc[0] == "1.234,5"


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"series_id,timestamp,value\n", "no data rows"),
    (b"id,time,val\na,2020-01-01,1\n", "missing required column"),
    (b"series_id,timestamp,value\na,2020-01-01,\xff\xfe1\n", "not UTF-8"),
])
def test_bad_files_raise_a_named_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(RawFileError, match=message) as info:
        read_raw_file(path)
    assert "bad.csv" in str(info.value)


def test_truncated_parquet_is_a_bad_file(tmp_path, sample_slice):
    good = tmp_path / "good.parquet"
    sample_slice.to_parquet(good)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(RawFileError, match="cannot be read as Parquet"):
        read_raw_file(broken)
    rows, _ = read_raw_file(good)
    assert len(rows) == len(sample_slice)
    assert rows["source_row"].iloc[0] == 1


def test_ingest_archives_unchanged_skips_repeats_and_goes_on_past_a_bad_file(tmp_path, sample_slice):
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    good = write_csv(sample_slice, inbox / "day1.csv")
    (inbox / "broken.csv").write_text("nothing,useful\n1,2\n")

    first = ingest(inbox, store)
    assert (first.files_seen, first.files_new, len(first.files_rejected)) == (2, 1, 1)
    assert first.rows_new == len(sample_slice)
    digest = files.content_hash(good)
    archived = store / "raw" / digest[:2] / f"{digest}.csv"
    assert archived.read_bytes() == good.read_bytes()  # archived byte for byte
    rejected = first.files_rejected[0]
    assert (store / "raw" / rejected["sha256"][:2] / f"{rejected['sha256']}.csv").exists()  # bad files too
    assert list((store / "quarantine" / "ingest").glob("*.parquet"))

    # The same content under another name is not ingested again; the store does not grow.
    write_csv(sample_slice, inbox / "day1-copy.csv")
    second = ingest(inbox, store)
    assert (second.files_new, second.files_already_ingested) == (0, 3)
    assert len(read_series_store(store)) == len(sample_slice)


def test_store_orders_files_by_arrival(tmp_path, sample_slice):
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    write_csv(sample_slice.iloc[:10], inbox / "b.csv")
    ingest(inbox, store)
    write_csv(sample_slice.iloc[10:20], inbox / "a.csv")  # arrives later although it sorts first
    ingest(inbox, store)
    stored = read_series_store(store)
    assert stored.groupby("ingest_seq").size().tolist() == [10, 10]
    assert stored["ingest_seq"].iloc[-1] == 1


def test_the_store_does_not_depend_on_the_order_the_file_system_lists_files_in(tmp_path, sample_slice,
                                                                              monkeypatch):
    from pathlib import Path

    inbox = tmp_path / "inbox"
    for i, name in enumerate(["c.csv", "a.csv", "sub/b.csv"]):
        write_csv(sample_slice.iloc[i * 20:(i + 1) * 20], inbox / name)
    ingest(inbox, tmp_path / "listed")
    real_rglob = Path.rglob
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: reversed(list(real_rglob(self, pattern))))
    ingest(inbox, tmp_path / "reversed")
    listed, reversed_ = read_series_store(tmp_path / "listed"), read_series_store(tmp_path / "reversed")
    pd.testing.assert_frame_equal(listed, reversed_)
    assert listed["source_row"].iloc[0] == 2 and listed["value"].iloc[0] == sample_slice["value"].iloc[20]  # a.csv


def test_no_usable_input_names_each_file_and_its_problem(tmp_path, sample_slice):
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    inbox.mkdir()
    assert no_usable_input(inbox, {}, []) == f"no usable input: {inbox} holds no CSV or Parquet file"
    (inbox / "empty.csv").write_bytes(b"")
    (inbox / "junk.bin").write_bytes(b"\x00\x01")
    (inbox / ".DS_Store").write_bytes(b"\x00")  # hidden files are nobody's input
    summary = ingest(inbox, store)
    assert summary.files_ignored == ["junk.bin"] and not (store / "raw" / "junk.bin").exists()
    assert no_usable_input(inbox, read_manifest(store), summary.files_ignored) == summary.unusable == \
        "no usable input: empty.csv is empty; junk.bin is neither CSV nor Parquet"
    write_csv(sample_slice, inbox / "good.csv")
    summary = ingest(inbox, store)
    assert no_usable_input(inbox, read_manifest(store), summary.files_ignored) is summary.unusable is None


def test_missing_input_path_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        discover_files(tmp_path / "nope")


def test_fast_csv_reader_parses_exactly_like_the_careful_one(tmp_path, monkeypatch):
    import forecasting.parsing as parsing

    text = ('\ufeffseries_id,timestamp,value,temp\n'
            '"a, quoted",2016-01-01T00:00:00Z, 5,1.5\n'
            ' b ,2016-01-01 01:00:00+01:00,1e3,\n'
            'c,not a time,12,0\n'
            'd,2016-01-02,"1,000",2\n'
            'e,2016-01-03,,3\n')
    path = tmp_path / "mixed.csv"
    path.write_text(text, encoding="utf-8")
    assert parsing._read_csv_fast(path) is not None  # the fast path does read this file
    fast, fast_notes = read_raw_file(path)
    monkeypatch.setattr(parsing, "_read_csv_fast", lambda path, separator=",": None)
    careful, careful_notes = read_raw_file(path)
    pd.testing.assert_frame_equal(fast, careful)
    assert fast_notes == careful_notes
    assert fast["value"].tolist()[:2] == [5.0, 1000.0] and fast["raw_value"].iloc[3] == "1,000"
