"""End to end: the real daily flow on real sample data, against a real (temporary) Prefect API."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.daily import daily_forecast
from forecasting.columns import FORECAST_COLUMNS
from stores.forecasts import read_parquet_forecasts, read_sql_forecasts
from tests.conftest import write_csv

HORIZON, LOOKBACK = 7, 14


def run(inbox, data_dir, as_of=None):
    return daily_forecast(input_path=str(inbox), data_dir=str(data_dir), as_of=as_of, horizon=HORIZON,
                          lookback=LOOKBACK, max_epochs=5)


def test_daily_flow_publishes_the_contract_and_reruns_idempotently(prefect_server, tmp_path, sample_slice, rng):
    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    holes = rng.choice(len(sample_slice), size=12, replace=False)
    write_csv(sample_slice.drop(index=holes), inbox / "day1.csv")
    (inbox / "garbage.csv").write_bytes(b"\x00\x01binary\xff garbage")
    as_of = "2016-12-24"

    result = run(inbox, data_dir, as_of)
    assert result["ingest"].files_new == 1 and len(result["ingest"].files_rejected) == 1
    assert result["gapfill"].imputed > 0

    parquet = read_parquet_forecasts(data_dir)
    sql = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    # Contract: columns, one row per series and step, origin = last observed timestamp up to the as-of.
    assert list(parquet.columns[:len(FORECAST_COLUMNS)]) == list(FORECAST_COLUMNS)
    assert len(parquet) == 3 * HORIZON
    assert set(parquet["series_id"]) == set(sample_slice["series_id"])
    assert (parquet["origin"] == pd.Timestamp(as_of, tz="UTC")).all()
    assert sorted(parquet["step"].unique()) == list(range(1, HORIZON + 1))
    assert (parquet["timestamp"] == parquet["origin"] + pd.to_timedelta(parquet["step"], unit="D")).all()
    assert (parquet["yhat_lower"] <= parquet["yhat"]).all() and (parquet["yhat"] <= parquet["yhat_upper"]).all()
    assert parquet["run_id"].nunique() == 1
    assert result["train"].promoted, result["train"].decision  # a first model that beats seasonal naive
    assert set(parquet["model_version"]) == {result["train"].model_version}
    assert (data_dir / "models" / parquet["model_version"].iloc[0] / "model.keras").is_file()
    # The version's explanations are stored beside it: its own history leads the input groups.
    explanation = result["explain"].explanation
    assert (data_dir / "models" / parquet["model_version"].iloc[0] / "explanations.json").is_file()
    assert explanation["version"] == result["train"].model_version and not result["explain"].reused
    assert explanation["channels"][0]["name"] == "target history" and explanation["channels"][0]["mase"] > 0

    # Parquet and SQL agree row for row.
    key = ["series_id", "step"]
    left = parquet.sort_values(key).reset_index(drop=True)
    right = sql.sort_values(key).reset_index(drop=True)
    right["run_date"] = right["run_date"].astype(str)
    columns = [*FORECAST_COLUMNS, "run_date"]
    pd.testing.assert_frame_equal(left[columns].astype({"run_date": str}), right[columns], check_dtype=False)

    # A rerun of the same as-of (a retry, a backfill, a restart) finds the model already trained on exactly
    # this data and reuses it: the same rows, row for row, under the new run id.
    again = run(inbox, data_dir, as_of)
    assert again["ingest"].files_new == 0
    assert again["train"].reused and again["train"].model_version == result["train"].model_version
    assert again["explain"].reused and again["explain"].explanation == explanation  # measured once per version
    parquet2 = read_parquet_forecasts(data_dir)
    sql2 = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    assert len(parquet2) == len(sql2) == len(parquet)
    assert parquet2["run_id"].nunique() == 1 and parquet2["run_id"].iloc[0] != parquet["run_id"].iloc[0]
    same = [c for c in FORECAST_COLUMNS if c != "run_id"]
    pd.testing.assert_frame_equal(parquet2.sort_values(key).reset_index(drop=True)[same], left[same])

    # The next day's run warm-starts a challenger from the champion; whichever wins publishes.
    next_day = run(inbox, data_dir, "2016-12-25")
    assert next_day["train"].warm_start and not next_day["train"].reused
    published = read_parquet_forecasts(data_dir)
    assert set(published.loc[published["run_date"].astype(str) == "2016-12-25", "model_version"]) == {
        next_day["train"].champion_version}

    # The run left its artifacts in the Prefect API.
    from prefect.artifacts import Artifact

    for key in ("validation-summary", "forecast-table", "run-metrics", "model-comparison", "feature-importance",
                "realised-accuracy"):
        assert Artifact.get(key) is not None, key
    assert "validation loss" in Artifact.get("run-metrics").data
    assert "seasonal naive" in Artifact.get("model-comparison").data
    # The next day's run scored the first day's publication against what was observed on the 25th.
    assert 1 <= next_day["accuracy"].points_new <= 3  # step 1 of each series, unless that day is a hole
    assert "| last 7 run dates | 1 (from 2016-12-24) |" in Artifact.get("realised-accuracy").data

    # A week later the cadence calls for a full retrain instead of another warm start.
    later = run(inbox, data_dir, "2016-12-31")
    assert not later["train"].warm_start


def test_flow_fails_with_a_reason_when_nothing_is_valid(prefect_server, tmp_path, sample_slice):
    inbox = tmp_path / "inbox"
    write_csv(sample_slice, inbox / "old.csv")
    with pytest.raises(Exception, match="nothing valid is left after validation.*stale"):
        run(inbox, tmp_path / "store", as_of="2020-01-01")


@pytest.mark.parametrize(("days", "why"), [(10, "shorter than the lookback of 14"),  # nothing to window
                                           (20, "not enough history to train: 0 training")])  # no training windows
def test_too_little_history_to_train_publishes_seasonal_naive_instead_of_failing(prefect_server, tmp_path,
                                                                                  sample_slice, days, why):
    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    recent = sample_slice[sample_slice["timestamp"] > sample_slice["timestamp"].max() - pd.Timedelta(days=days)]
    write_csv(recent, inbox / "day1.csv")
    result = run(inbox, data_dir)
    assert result["windows"].train_windows == 0 and why in result["windows"].untrainable
    assert result["train"].model_version is None and result["train"].decision.startswith("not trained: ")
    forecasts = read_parquet_forecasts(data_dir)
    assert len(forecasts) == 3 * HORIZON and (forecasts["model_version"] == "seasonal-naive").all()
    assert result["published"].series_by_model == 0


def test_a_second_run_on_the_same_data_dir_is_refused(prefect_server, tmp_path, sample_slice):
    from stores.files import exclusive_run

    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    write_csv(sample_slice, inbox / "day.csv")
    with exclusive_run(data_dir):  # as if another run held the data dir
        with pytest.raises(Exception, match="is in use by another run .pid"):
            run(inbox, data_dir)
    assert not (data_dir / "raw").exists()  # the refused run wrote nothing


def test_a_single_series_is_forecast_by_three_networks_and_warm_started_as_three(prefect_server, tmp_path,
                                                                                  sample_slice):
    from stores.registry import load_version, read_index, read_metadata

    one = sample_slice[sample_slice["series_id"] == sample_slice["series_id"].iloc[0]]
    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    write_csv(one[one["timestamp"] <= pd.Timestamp("2016-12-23", tz="UTC")], inbox / "day1.csv")
    first = run(inbox, data_dir, as_of="2016-12-23")
    write_csv(one, inbox / "day2.csv")
    second = run(inbox, data_dir, as_of="2016-12-24")

    models = data_dir / "models"
    cold, warm = (read_metadata(models, result["train"].model_version) for result in (first, second))
    assert cold["config"]["members"] == 3 and [m["seed"] for m in cold["members"]] == [42, 1042, 2042]
    assert warm["warm_start_from"] == first["train"].model_version and len(warm["members"]) == 3
    assert len(load_version(models, read_index(models)["versions"][-1]).model.layers) == 5  # input, 3, average
    forecasts = read_parquet_forecasts(data_dir)
    assert len(forecasts[forecasts["run_date"].astype(str) == "2016-12-24"]) == HORIZON
