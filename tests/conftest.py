"""Shared fixtures: one Prefect test server per session, seeded slices of the real sample data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import prefect  # noqa: F401 - sets up Prefect's log handlers once, before any per-test output capture
import pytest
import sqlalchemy as sa

from forecasting.columns import FORECAST_COLUMNS
from forecasting.settings import PROJECT_ROOT
from stores.forecasts import read_parquet_forecasts, read_sql_forecasts, redacted_url

SAMPLE_CSV = PROJECT_ROOT / "data" / "sample" / "wikipedia_traffic_daily.csv"
WEATHER_CSV = PROJECT_ROOT / "data" / "examples" / "seattle_weather_daily.csv"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path):
    """No developer's LSTM_FORECAST_* variables or config file leak into a test."""
    import os

    for name in [n for n in os.environ if n.startswith("LSTM_FORECAST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def prefect_server() -> str:
    """A real, temporary Prefect API for the whole session (flows, task runs, artifacts); yields its URL."""
    from prefect.testing.utilities import prefect_test_harness

    from prefect.settings import PREFECT_API_URL

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()  # for subprocesses, e.g. the console script


@pytest.fixture(scope="session")
def sample() -> pd.DataFrame:
    """The bundled real sample, parsed: 10 daily Wikipedia page-view series, 2015-07-01..2016-12-31."""
    frame = pd.read_csv(SAMPLE_CSV)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    frame["series_id"] = frame["series_id"].astype("string")
    frame["value"] = frame["value"].astype("float64")
    return frame


@pytest.fixture
def sample_slice(sample) -> pd.DataFrame:
    """Three real series, last 160 days: small enough for tiny-epoch flow tests."""
    ids = sorted(sample["series_id"].unique())[:3]
    part = sample[sample["series_id"].isin(ids)]
    return part[part["timestamp"] > part["timestamp"].max() - pd.Timedelta(days=160)].reset_index(drop=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


POSTGRES_URL = os.environ.get("LSTM_FORECAST_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh schema in the local PostgreSQL (`.ci/run` starts the server), dropped afterwards."""
    schema = f"lstm_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))  # generated name, not user input
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {redacted_url(POSTGRES_URL)}: {str(exc).splitlines()[0]}")
    yield sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.copy()
    if "timestamp" in out and pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    out.to_csv(path, index=False)
    return path


def run_cli(prefect_server: str, *args: str, cwd: Path = PROJECT_ROOT, hash_seed: str = "0",
            crash: str | None = None) -> subprocess.CompletedProcess:
    """The console script in a fresh process against the session's Prefect API; `crash` runs it through
    tests/crash.py, which kills the process at that write point."""
    command = [sys.executable, "-m", "tests.crash" if crash else "flows.cli", *([crash] if crash else []), *args]
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "PYTHONPATH": str(PROJECT_ROOT),
           "PYTHONHASHSEED": hash_seed}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


FORECAST_VALUES = [c for c in FORECAST_COLUMNS if c not in ("run_id", "model_version")]  # names differ per run


def published(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Parquet, SQL) forecasts of a data dir with the default SQLite database, in one order."""
    parquet = read_parquet_forecasts(data_dir).sort_values(["series_id", "step"]).reset_index(drop=True)
    sql = read_sql_forecasts(f"sqlite:///{(data_dir / 'forecasts.sqlite').resolve()}")
    return parquet, sql.sort_values(["series_id", "step"]).reset_index(drop=True)


@pytest.fixture
def webhook():
    """A local HTTP endpoint a Prefect custom-webhook notification block can post to; yields (url, received)."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
