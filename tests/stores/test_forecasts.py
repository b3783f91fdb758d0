"""Publication: forecasts from the latest window, and Parquet + SQL replaced together per run date."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from forecasting.columns import FORECAST_COLUMNS
from forecasting.forecast import FALLBACK_VERSION, forecast
from forecasting.model.config import ModelConfig
from forecasting.model.version import ModelVersion
from forecasting.windows import plan_windows
from stores.forecasts import (parquet_path, publish_forecasts_atomically, read_parquet_forecasts,
                                  read_sql_forecasts, redacted_url)

RUN_DATE = date(2016, 12, 31)


def champion_for(clean, lookback=7, horizon=3):
    plan = plan_windows(clean, "D", lookback, horizon, 0.2)
    config = ModelConfig(lookback=lookback, horizon=horizon, features=tuple(plan.features),
                         quantiles=(0.1, 0.5, 0.9), units=4, layers=1, level_window=7, seed=0)
    metadata = {"config": config.as_dict(), "interval": {"correction": [0.1, 0.2, 0.3]}}
    return ModelVersion("v-test", config.build(), plan.scalers, metadata)


def test_forecast_rows_follow_the_contract(sample_slice):
    from forecasting.model.training import predict_quantiles
    from forecasting.windows import add_features

    clean = sample_slice.assign(imputed=False)
    champion = champion_for(clean)
    rows = forecast(champion, clean, "D", horizon=3)
    assert len(rows) == 3 * 3 and (rows["model_version"] == "v-test").all()
    last = clean.groupby("series_id")["timestamp"].max()
    assert (rows["origin"] == rows["series_id"].map(last)).all()  # origin = last observed timestamp
    assert (rows["timestamp"] == rows["origin"] + pd.to_timedelta(rows["step"], unit="D")).all()
    assert rows.groupby("series_id")["step"].apply(list).map(lambda s: s == [1, 2, 3]).all()
    assert (rows["yhat_lower"] <= rows["yhat"]).all() and (rows["yhat"] <= rows["yhat_upper"]).all()
    assert (rows["yhat_lower"] >= 0).all()  # page views are never negative
    # The point forecast is the model's median on the last `lookback` featurised values, unscaled.
    first = rows["series_id"].iloc[0]
    tail = clean[clean["series_id"] == first].tail(7)
    featured, features = add_features(tail, champion.scalers, "D")
    x = featured[features].to_numpy("float32")[None]
    median = predict_quantiles(champion.model, x, champion.metadata["interval"]["correction"])[..., 1]
    expected = champion.scalers.target.unscale(np.array([first]), median)[0]
    np.testing.assert_allclose(rows["yhat"].iloc[:3], np.maximum(expected, 0), rtol=1e-5)


def test_a_series_lagging_the_as_of_is_forecast_through_its_missing_periods_and_published_from_the_as_of(
        sample_slice):
    clean = sample_slice.assign(imputed=False)
    as_of = clean["timestamp"].max()
    late = clean["series_id"].iloc[0]
    lagging = clean[~((clean["series_id"] == late) & (clean["timestamp"] > as_of - pd.Timedelta(days=2)))]
    champion = champion_for(clean)

    rows = forecast(champion, lagging, "D", horizon=3, as_of=as_of)
    assert (rows["origin"] == as_of).all() and len(rows) == 3 * 3  # every series: the 3 days after the as-of
    assert (rows["timestamp"] == as_of + pd.to_timedelta(rows["step"], unit="D")).all()
    # Its forecast is the one made from its own forecasts of the two missing days, marked imputed.
    first = forecast(champion, lagging[lagging["series_id"] == late], "D", horizon=3)
    bridged = pd.concat([lagging[lagging["series_id"] == late],
                         pd.DataFrame({"series_id": late, "timestamp": first["timestamp"].iloc[:2],
                                       "value": first["yhat"].iloc[:2], "imputed": True})], ignore_index=True)
    expected = forecast(champion, bridged, "D", horizon=3)
    np.testing.assert_allclose(rows.loc[rows["series_id"] == late, "yhat"], expected["yhat"], rtol=1e-6)
    # Series that are not late forecast as they would without the as-of; without it, from their last point.
    others = rows[rows["series_id"] != late].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, forecast(champion, clean[clean["series_id"] != late], "D", horizon=3))
    assert forecast(champion, lagging, "D", horizon=3)["origin"].min() == as_of - pd.Timedelta(days=2)


def test_short_series_and_missing_champion_fall_back_to_seasonal_naive(sample_slice):
    clean = sample_slice.assign(imputed=False)
    short_id = clean["series_id"].iloc[0]
    short = clean[clean["series_id"] == short_id].head(5).assign(series_id="brand-new")
    with_short = pd.concat([clean, short], ignore_index=True)
    rows = forecast(champion_for(clean), with_short, "D", horizon=3)
    by_version = rows.groupby("series_id")["model_version"].first()
    assert by_version["brand-new"] == FALLBACK_VERSION and (by_version.drop("brand-new") == "v-test").all()
    fallback = rows[rows["series_id"] == "brand-new"]
    assert fallback["yhat"].tolist() == [short["value"].iloc[-1]] * 3  # shorter than a season: last value

    everything = forecast(None, clean, "D", horizon=9)
    assert (everything["model_version"] == FALLBACK_VERSION).all() and len(everything) == 3 * 9
    one = clean[clean["series_id"] == short_id]["value"].to_numpy()
    got = everything[everything["series_id"] == short_id]["yhat"].to_numpy()
    np.testing.assert_array_equal(got, np.resize(one[-7:], 9))  # the last week, repeated
    assert (everything["yhat_upper"] >= everything["yhat_lower"]).all()


def test_series_where_seasonal_naive_won_the_holdout_are_published_by_it(sample_slice):
    clean = sample_slice.assign(imputed=False)
    champion = champion_for(clean)
    loser = sorted(clean["series_id"].unique())[1]
    champion.metadata["fallback_series"] = [loser]
    rows = forecast(champion, clean, "D", horizon=3)
    by_version = rows.groupby("series_id")["model_version"].first()
    assert by_version[loser] == FALLBACK_VERSION and (by_version.drop(loser) == "v-test").all()
    expected = forecast(None, clean[clean["series_id"] == loser], "D", horizon=3)
    np.testing.assert_array_equal(rows.loc[rows["series_id"] == loser, "yhat"], expected["yhat"])


def test_series_where_the_seasonal_base_won_the_holdout_publish_the_base(sample_slice):
    from forecasting.model.training import predict_quantiles

    clean = sample_slice.assign(imputed=False)
    plan = plan_windows(clean, "D", 14, 3, 0.2)
    config = ModelConfig(lookback=14, horizon=3, features=tuple(plan.features), quantiles=(0.1, 0.5, 0.9), units=4,
                         layers=1, level_window=7, seed=0, base="seasonal", season=7)
    ids = sorted(clean["series_id"].unique())
    champion = ModelVersion("v-test", config.build(), plan.scalers,
                            {"config": config.as_dict(), "interval": {"correction": [0.1, 0.2, 0.3]},
                             "base_series": [ids[0]], "fallback_series": [ids[1]]})
    rows = forecast(champion, clean, "D", horizon=3)
    by_version = rows.groupby("series_id")["model_version"].first()
    assert by_version.to_dict() == {ids[0]: "v-test:seasonal-base", ids[1]: FALLBACK_VERSION, ids[2]: "v-test"}
    # Its input is the training features' last window: the profile channel (computed from the series' first
    # row) is the one the model was trained on, not one restarted at the window.
    window = plan.series[plan.series["series_id"] == ids[0]].tail(14)
    base = predict_quantiles(champion.model, window[plan.features].to_numpy("float32")[None], [0.1, 0.2, 0.3],
                             base_only=True)
    expected = champion.scalers.target.unscale(np.array([ids[0]]), base)[0]
    np.testing.assert_allclose(rows.loc[rows["series_id"] == ids[0], "yhat"], np.maximum(expected[:, 1], 0), rtol=1e-5)


def contract_rows(n_series=2, horizon=3, run_id="run-1", value=1.0):
    origin = pd.Timestamp("2016-12-31", tz="UTC")
    return pd.DataFrame({
        "series_id": np.repeat([f"s{i}" for i in range(n_series)], horizon),
        "origin": origin,
        "timestamp": [origin + pd.Timedelta(days=s) for _ in range(n_series) for s in range(1, horizon + 1)],
        "step": np.tile(np.arange(1, horizon + 1), n_series).astype("int32"),
        "yhat": value, "yhat_lower": value - 1, "yhat_upper": value + 1, "model_version": "v1", "run_id": run_id,
    })


def assert_stores_agree(data_dir, url):
    parquet = read_parquet_forecasts(data_dir).sort_values(["run_date", "series_id", "step"]).reset_index(drop=True)
    sql = read_sql_forecasts(url).sort_values(["run_date", "series_id", "step"]).reset_index(drop=True)
    sql["run_date"] = sql["run_date"].astype(str)
    parquet["run_date"] = parquet["run_date"].astype(str)
    columns = [*FORECAST_COLUMNS, "run_date"]
    pd.testing.assert_frame_equal(parquet[columns], sql[columns], check_dtype=False)
    return parquet


def test_republishing_a_run_date_replaces_in_both_stores(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    publish_forecasts_atomically(contract_rows(run_id="first"), RUN_DATE, tmp_path, url)
    publish_forecasts_atomically(contract_rows(run_id="other-day"), date(2016, 12, 30), tmp_path, url)
    publish_forecasts_atomically(contract_rows(run_id="second", value=5.0), RUN_DATE, tmp_path, url)
    both = assert_stores_agree(tmp_path, url)
    assert len(both) == 12
    latest = both[both["run_date"] == "2016-12-31"]
    assert set(latest["run_id"]) == {"second"} and (latest["yhat"] == 5.0).all()
    assert not list(parquet_path(tmp_path, RUN_DATE).parent.glob(".*"))  # no staged file left behind


def test_failed_database_write_leaves_both_stores_as_they_were(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    publish_forecasts_atomically(contract_rows(run_id="good"), RUN_DATE, tmp_path, url)
    before = parquet_path(tmp_path, RUN_DATE).read_bytes()
    with pytest.raises(sa.exc.IntegrityError):  # duplicate (run_date, series_id, step) violates the key
        publish_forecasts_atomically(pd.concat([contract_rows(run_id="bad")] * 2), RUN_DATE, tmp_path, url)
    assert parquet_path(tmp_path, RUN_DATE).read_bytes() == before
    assert set(assert_stores_agree(tmp_path, url)["run_id"]) == {"good"}


def test_sql_values_are_bound_not_interpolated(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    rows = contract_rows(n_series=1)
    rows["series_id"] = "x'); DROP TABLE forecasts; --"
    publish_forecasts_atomically(rows, RUN_DATE, tmp_path, url)
    assert read_sql_forecasts(url)["series_id"].unique().tolist() == ["x'); DROP TABLE forecasts; --"]


def test_redacted_url_hides_the_password():
    assert "secret" not in redacted_url("postgresql+psycopg://user:secret@db:5432/x")


def test_postgres_publication_is_idempotent(tmp_path, postgres_url):
    publish_forecasts_atomically(contract_rows(run_id="first"), RUN_DATE, tmp_path, postgres_url)
    publish_forecasts_atomically(contract_rows(run_id="second"), RUN_DATE, tmp_path, postgres_url)
    both = assert_stores_agree(tmp_path, postgres_url)
    assert len(both) == 6 and set(both["run_id"]) == {"second"}
    stored = read_sql_forecasts(postgres_url)
    assert str(stored["origin"].dt.tz) == "UTC"
