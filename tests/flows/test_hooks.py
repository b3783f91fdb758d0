"""A failed run says so: a `run-failure` artifact on the run, and a notification through a Prefect
notification block (a custom webhook, received by the `webhook` fixture's local HTTP server)."""

from __future__ import annotations

from flows.daily import daily_forecast
from flows.hooks import failure_markdown
from tests.conftest import write_csv


def test_a_failed_run_leaves_an_artifact_and_notifies(prefect_server, tmp_path, sample_slice, webhook, monkeypatch):
    from prefect.artifacts import Artifact
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    url, received = webhook
    CustomWebhookNotificationBlock(name="alerts", url=url, json_data={"subject": "{{subject}}", "text": "{{body}}"}) \
        .save("lstm-forecast-test-alerts", overwrite=True)
    monkeypatch.setenv("LSTM_FORECAST_NOTIFY_BLOCK", "custom-webhook/lstm-forecast-test-alerts")
    write_csv(sample_slice, tmp_path / "inbox" / "part.csv")

    state = daily_forecast(input_path=str(tmp_path / "inbox"), data_dir=str(tmp_path / "store"),
                           as_of="2020-01-01", return_state=True)  # every series is stale at that as-of
    assert state.is_failed()

    report = Artifact.get("run-failure")
    assert report is not None and "daily-asof-2020-01-01" in report.data
    assert "`validate" in report.data and "stale" in report.data  # the failing task and the reason
    assert len(received) == 1
    assert received[0]["subject"] == "lstm-forecast: daily-asof-2020-01-01 failed"
    assert "stale" in received[0]["text"]


def test_failure_markdown_names_the_tasks():
    text = failure_markdown("daily-forecast", "daily-asof-2016-12-31", "boom", ["publish-1a2"])
    assert "`publish-1a2`" in text and "boom" in text and "forecasts published before it stay" in text


def test_setup_creates_the_work_pool_and_the_gpu_limit_idempotently(prefect_server, capsys):
    from prefect import get_client

    from flows.cli import main

    try:
        assert main(["setup", "--pool", "lstm-forecast-test", "--gpu-slots", "2"]) == 0
        assert "created work pool 'lstm-forecast-test'" in capsys.readouterr().out
        assert main(["setup", "--pool", "lstm-forecast-test", "--gpu-slots", "1"]) == 0
        out = capsys.readouterr().out
        assert "already exists" in out and "'gpu': 1 slot(s)" in out
        with get_client(sync_client=True) as client:
            pool = client.read_work_pool("lstm-forecast-test")
            assert pool.type == "process" and pool.base_job_template
            assert client.read_concurrency_limit_by_tag("gpu").concurrency_limit == 1
    finally:
        # The session's Prefect API is shared: a gpu limit left behind would make every later training wait
        # for a slot, forever for one that a test killed mid-training (this server reclaims no expired leases).
        with get_client(sync_client=True) as client:
            client.delete_concurrency_limit_by_tag("gpu")
            client.delete_work_pool("lstm-forecast-test")
