"""The accuracy store: Parquet and SQL hold the same rows, a rerun that changes nothing writes nothing,
a restated actual rewrites its publication, PostgreSQL included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.accuracy import score_publications
from stores.accuracy import accuracy_path, read_accuracy, read_sql_accuracy, save_scores
from tests.forecasting.test_accuracy import clean_series, publication


def scored(clean, origin_day=40, run_date="2016-02-10"):
    return score_publications(publication(clean, origin_day, run_date=run_date), clean, 7)


def test_scores_are_stored_once_and_restated_actuals_rewrite_them(tmp_path):
    clean = clean_series(np.random.default_rng(1))
    url = f"sqlite:///{tmp_path / 'forecasts.sqlite'}"
    fresh = pd.concat([scored(clean), scored(clean, 45, "2016-02-15")], ignore_index=True)
    assert save_scores(tmp_path, url, fresh) == {"new": len(fresh), "restated": 0, "publications_updated": 2}
    path = accuracy_path(tmp_path, pd.Timestamp("2016-02-10").date())
    written = path.stat().st_mtime_ns
    assert save_scores(tmp_path, url, fresh) == {"new": 0, "restated": 0, "publications_updated": 0}
    assert path.stat().st_mtime_ns == written  # nothing changed, nothing written

    corrected = clean.copy()
    corrected.loc[42, "value"] += 50  # series a, day 43: step 2 of the first publication
    counts = save_scores(tmp_path, url, scored(corrected))
    assert counts == {"new": 0, "restated": 1, "publications_updated": 1}
    stored, sql = read_accuracy(tmp_path), read_sql_accuracy(url)
    assert len(stored) == len(sql) == len(fresh)
    key = ["run_date", "series_id", "step"]
    merged = stored.astype({"run_date": str}).merge(sql.astype({"run_date": str}), on=key, suffixes=("", "_sql"))
    assert len(merged) == len(stored) and np.allclose(merged["y"], merged["y_sql"])
    assert merged.loc[(merged["series_id"] == "a") & (merged["step"] == 2)
                      & (merged["run_date"] == "2016-02-10"), "y"].item() == corrected.loc[42, "value"]


def test_postgres_accuracy_is_idempotent(tmp_path, postgres_url):
    clean = clean_series(np.random.default_rng(2))
    save_scores(tmp_path, postgres_url, scored(clean))
    (tmp_path / "accuracy").rename(tmp_path / "elsewhere")  # Parquet gone: the rerun rewrites both stores
    save_scores(tmp_path, postgres_url, scored(clean))
    sql = read_sql_accuracy(postgres_url)
    assert len(sql) == len(scored(clean)) and not sql.duplicated(["run_date", "series_id", "step"]).any()
