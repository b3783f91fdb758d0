"""Realised accuracy end to end: a backfill of 30 daily as-ofs scores every forecast point that was later
observed, in Parquet and SQL alike; a level shift in later data is found as drift and the run after it
retrains from scratch; rerunning an as-of adds no row."""

from __future__ import annotations

import pandas as pd

from flows.backfill import backfill_flow
from stores.accuracy import read_accuracy, read_drift, read_sql_accuracy
from stores.forecasts import read_parquet_forecasts
from stores.registry import read_index, read_metadata
from tests.conftest import write_csv

START, END, SHIFT = "2016-11-20", "2016-12-19", "2016-12-08"


def versions(data_dir):
    models = data_dir / "models"
    return [read_metadata(models, version) for version in read_index(models)["versions"]]


def test_backfill_scores_every_observed_point_and_drift_retrains_from_scratch(prefect_server, tmp_path,
                                                                              sample_slice, monkeypatch, webhook):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url, received = webhook
    CustomWebhookNotificationBlock(name="drift", url=url, json_data={"subject": "{{subject}}", "text": "{{body}}"}) \
        .save("lstm-forecast-test-drift", overwrite=True)
    monkeypatch.setenv("LSTM_FORECAST_NOTIFY_BLOCK", "custom-webhook/lstm-forecast-test-drift")
    monkeypatch.setenv("LSTM_FORECAST_FULL_RETRAIN_DAYS", "365")  # only drift may ask for a full retrain
    for name, value in (("WARM_EPOCHS", "1"), ("LAYERS", "1"), ("UNITS", "8")):  # about scoring and drift, not fit
        monkeypatch.setenv(f"LSTM_FORECAST_{name}", value)
    monkeypatch.setenv("LSTM_FORECAST_EXPLAIN_WINDOWS", "0")
    data = sample_slice.copy()
    shifted = data["timestamp"] >= pd.Timestamp(SHIFT, tz="UTC")
    data.loc[shifted, "value"] = data.loc[shifted, "value"] * 4 + 2000  # the level moves, for good
    inbox, data_dir = tmp_path / "inbox", tmp_path / "store"
    write_csv(data, inbox / "history.csv")

    def backfill(**options):
        return backfill_flow(start=START, end=END, input_path=str(inbox), data_dir=str(data_dir), horizon=7,
                             lookback=14, max_epochs=1, **options)

    assert len(backfill()["ran"]) == 30

    # Every published point whose time has come (up to the last as-of) is scored, once, in both stores.
    published = read_parquet_forecasts(data_dir)
    due = published[published["timestamp"] <= pd.Timestamp(END, tz="UTC")]
    accuracy = read_accuracy(data_dir)
    key = ["run_date", "series_id", "step"]
    expected = due.assign(run_date=due["run_date"].astype(str))[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(accuracy[key].sort_values(key).reset_index(drop=True),
                                  expected.astype({"step": accuracy["step"].dtype}), check_dtype=False)
    sql = read_sql_accuracy(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    assert len(sql) == len(accuracy) and not sql.duplicated(key).any()
    joined = due.merge(data, on=["series_id", "timestamp"]).assign(run_date=lambda f: f["run_date"].astype(str))
    check = accuracy.merge(joined[[*key, "value"]], on=key)
    assert len(check) == len(accuracy) and (check["y"] == check["value"]).all()  # y is what was observed
    assert ((accuracy["covered"]) == ((accuracy["y"] >= accuracy["yhat_lower"])
                                      & (accuracy["y"] <= accuracy["yhat_upper"]))).all()

    # The shift is found as drift; the run after the first finding retrains from scratch, saying why.
    drift = read_drift(data_dir)
    assert drift is not None and pd.Timestamp(drift["as_of"]) > pd.Timestamp(SHIFT, tz="UTC")
    trained = versions(data_dir)
    reasons = [(pd.Timestamp(m["data_end"]), m.get("full_retrain_reason")) for m in trained]
    assert reasons[0][1] == "no champion to start from"
    drifted = [(when, why) for when, why in reasons if why and why.startswith("drift found")]
    assert drifted and all(when > pd.Timestamp(SHIFT, tz="UTC") for when, _ in drifted), reasons
    assert all(why is None for when, why in reasons[1:] if when <= pd.Timestamp(SHIFT, tz="UTC")), reasons
    assert received and all(message["subject"].startswith("lstm-forecast: drift of ") for message in received)
    assert "The next run retrains from scratch" in received[0]["text"]

    # Rerunning an as-of scores nothing twice.
    again = backfill_flow(start=END, end=END, input_path=str(inbox), data_dir=str(data_dir), horizon=7,
                          lookback=14, max_epochs=1, force=True)
    assert again["ran"] == [END]
    assert len(read_accuracy(data_dir)) == len(accuracy)
    assert len(read_sql_accuracy(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")) == len(sql)
