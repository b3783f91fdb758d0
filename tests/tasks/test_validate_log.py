"""What the validate task logs about quarantined rows."""

import pandas as pd

from tasks.validate import quarantine_lines


def test_the_log_names_the_most_frequent_reasons_and_counts_the_rest():
    stale = ["series 's4' is stale"] * 30
    missing = [f"feed.csv row {row}: value is missing" for row in range(100, 125)]  # a run of 25 missing values
    lines = quarantine_lines(pd.Series(stale + missing), "store/quarantine/validate.parquet", limit=5)

    assert lines[0] == "Quarantined 30 row(s): series 's4' is stale"
    assert len(lines) == 6 and all(line.startswith("Quarantined 1 row(s): feed.csv row") for line in lines[1:5])
    assert lines[5] == "Quarantined 21 more row(s) for 21 other reason(s): see store/quarantine/validate.parquet"


def test_few_reasons_get_a_line_each_and_no_summary():
    assert quarantine_lines(pd.Series(["a", "a", "b"]), "q") == ["Quarantined 2 row(s): a", "Quarantined 1 row(s): b"]
    assert quarantine_lines(pd.Series([], dtype=str), "q") == []
