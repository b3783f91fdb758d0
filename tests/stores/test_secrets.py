"""Database credentials from a Prefect Secret block: used for publication, never written to the logs."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from flows.daily import daily_forecast
from forecasting.settings import load_settings
from stores.forecasts import read_sql_forecasts
from stores.forecasts import resolve_database_url
from tests.conftest import write_csv

PASSWORD = "s3cret-Pa55word"


def test_the_daily_flow_publishes_through_a_secret_block(prefect_server, tmp_path, sample_slice, postgres_url,
                                                          monkeypatch):
    from prefect import get_client
    from prefect.blocks.system import Secret
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    # The local server trusts connections, so any password works; it must still never reach a log.
    url = sa.engine.make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)
    Secret(value=url).save("lstm-forecast-test-db", overwrite=True)
    monkeypatch.setenv("LSTM_FORECAST_DATABASE_SECRET", "lstm-forecast-test-db")
    write_csv(sample_slice, tmp_path / "inbox" / "part.csv")

    state = daily_forecast(input_path=str(tmp_path / "inbox"), data_dir=str(tmp_path / "store"), horizon=7,
                           lookback=14, max_epochs=2, return_state=True)
    assert state.is_completed()
    assert len(read_sql_forecasts(postgres_url)) == 3 * 7  # published to PostgreSQL, not the SQLite default
    assert not (tmp_path / "store" / "forecasts.sqlite").exists()

    async def flow_logs() -> str:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            return "\n".join(log.message for log in logs)

    for _ in range(100):  # logs travel to the API in batches, every few seconds
        text = asyncio.run(flow_logs())
        if "Published" in text:
            break
        time.sleep(0.2)
    assert "Published" in text and "postgresql+psycopg://postgres:***@" in text
    assert PASSWORD not in text


def test_a_missing_secret_block_is_named(prefect_server):
    with pytest.raises(ValueError, match="database_secret 'no-such-block'"):
        resolve_database_url(load_settings(database_secret="no-such-block"))
