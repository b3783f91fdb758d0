"""The bad-input corpus: each case is a raw file (bytes) and the outcome the pipeline must reach.

Outcomes:
- ("rejected", text): the whole file is rejected at ingestion; the message contains `text`;
- ("quarantined", series_or_None, text): validation or gap-fill quarantines rows (of that series) with `text`;
- ("accepted", None): everything in the file is usable;
- ("imputed", series, None): usable, with gap-filled points marked imputed.
Every case file also carries one good series, `good-<case>`, with 60 clean days: it must come through.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pandas as pd

DAYS = [(date(2016, 11, 1) + timedelta(days=i)).isoformat() for i in range(60)]


def good_rows(case: str) -> list[str]:
    return [f"good-{case},{day},{100 + i % 7}" for i, day in enumerate(DAYS)]


def csv(case: str, *rows: str, header: str = "series_id,timestamp,value") -> bytes:
    return ("\n".join([header, *good_rows(case), *rows]) + "\n").encode("utf-8")


def series(name: str, values, days=None) -> list[str]:
    """Rows of one series; by default on the last len(values) days, so it is fresh at the as-of."""
    values = list(values)
    days = DAYS[-len(values):] if days is None else days
    return [f"{name},{day},{value}" for day, value in zip(days, values)]


def truncated_parquet() -> bytes:
    frame = pd.DataFrame({"series_id": ["p"] * 60, "timestamp": DAYS, "value": range(60)})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


CASES: dict[str, tuple[str, bytes, tuple]] = {
    "empty": ("empty.csv", b"", ("rejected", "is empty")),
    "header_only": ("header_only.csv", b"series_id,timestamp,value\n", ("rejected", "no data rows")),
    "missing_column": ("missing.csv", b"series_id,timestamp\na,2016-11-01\n", ("rejected", "missing required column")),
    "misnamed_columns": ("misnamed.csv", b"id,time,val\na,2016-11-01,1\n", ("rejected", "missing required column")),
    "binary_garbage": ("garbage.csv", bytes(range(256)) * 20, ("rejected", "not UTF-8")),
    "non_utf8": ("latin1.csv", "series_id,timestamp,value\nMünchen,2016-11-01,1\n".encode("latin-1"),
                 ("rejected", "not UTF-8")),
    "truncated_parquet": ("truncated.parquet", truncated_parquet(), ("rejected", "cannot be read as Parquet")),
    "overlong_line": ("overlong.csv", csv("overlong") + b"x" * 3_000_000 + b"\n",
                      ("quarantined", None, "timestamp is missing")),
    "bom": ("bom.csv", b"\xef\xbb\xbf" + csv("bom"), ("accepted", None)),
    "wrong_type_value": ("wrong_type.csv", csv("wrong_type", *series("w", ["1", "abc", "3"])),
                         ("quarantined", "w", "value 'abc' is not a number")),
    "unparseable_timestamp": ("bad_time.csv", csv("bad_time", "t,yesterday,1", *series("t", [1, 2, 3])),
                              ("quarantined", "t", "timestamp 'yesterday' is not an ISO-8601 timestamp")),
    "mixed_timestamp_formats": ("mixed_formats.csv", csv("mixed_formats", "m,2016-12-28,1", "m,12/29/2016,2",
                                                         "m,2016-12-29T00:00:00Z,2", "m,2016-12-30T00:00:00Z,3"),
                                ("quarantined", None, "row 63: timestamp '12/29/2016' is not an ISO-8601 timestamp")),
    "mixed_time_zones": ("zones.csv", csv("zones", "z,2016-12-28T01:00:00+01:00,1", "z,2016-12-29T00:00:00Z,2",
                                          "z,2016-12-29T19:00:00-05:00,3"), ("accepted", None)),
    "identical_duplicates": ("dup_same.csv", csv("dup_same", *series("d", [1, 2, 3]), *series("d", [1, 2, 3])),
                             ("accepted", None)),
    "conflicting_duplicates": ("dup_conflict.csv", csv("dup_conflict", *series("c", [1, 2, 3]), "c,2016-12-29,99"),
                               ("quarantined", "c", "conflicting duplicate")),
    "unsorted_rows": ("unsorted.csv", csv("unsorted", *reversed(series("u", range(10)))), ("accepted", None)),
    "nan_and_inf": ("nan_inf.csv", csv("nan_inf", "n,2016-12-24,NaN", "n,2016-12-25,inf", *series("n", [1] * 5)),
                    ("quarantined", "n", "not finite")),
    "single_point": ("single.csv", csv("single", "one,2016-12-30,5"),
                     ("quarantined", "one", "fewer than 2 valid timestamps")),
    "frequency_change": ("freq.csv", csv("freq", *series("f", range(15), DAYS[30:45]),
                                         *series("f", [1] * 5, DAYS[45::3])),
                         ("quarantined", "f", "changed frequency: D before, every 3D since 2016-12-16")),
    "absurd_outlier": ("outlier.csv", csv("outlier", *series("o", [100 + i % 7 for i in range(59)] + [1e300])),
                       ("quarantined", "o", "is an absurd outlier")),
    # Intermittent demand: more than half of the values are zero, so the deviations' median (the MAD) is 0.
    "intermittent_series": ("intermittent.csv", csv("intermittent", *series("i", [0, 0, 3, 0, 1, 0, 0, 7, 0, 2] * 6)),
                            ("accepted", None)),
    "nearly_always_zero": ("rare.csv", csv("rare", *series("r", [0] * 29 + [12] + [0] * 29 + [40])), ("accepted", None)),
    "absurd_in_intermittent": ("intermittent_absurd.csv",
                               csv("intermittent_absurd", *series("ia", [0, 0, 3, 0, 1, 0, 0, 7, 0, 2] * 5 + [0] * 9 + [1e300])),
                               ("quarantined", "ia", "is an absurd outlier")),
    "shorter_than_a_window": ("short.csv", csv("short", *series("short", range(1, 11))), ("accepted", None)),
    "gap_over_limit": ("gap.csv", csv("gap", *series("g", range(10), DAYS[:10]), *series("g", range(20))),
                       ("quarantined", "g", "over the fill limit")),
    "traversal_series_id": ("traversal.csv", csv("traversal", *series("../../etc/passwd", range(60))),
                            ("accepted", None)),
    "sql_quotes_series_id": ("quotes.csv", csv("quotes", *series('"x\'); DROP TABLE forecasts; --"', range(60))),
                             ("accepted", None)),
    "unicode_series_id": ("unicode.csv", csv("unicode", *series("Москва ✓ with spaces", range(60))), ("accepted", None)),
    "stale_series": ("stale.csv", csv("stale", *series("s", range(20), DAYS[:20])), ("quarantined", "s", "is stale")),
}
