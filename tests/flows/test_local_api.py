"""The temporary Prefect API a command starts for itself when no API is configured (flows/local_api.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from flows.local_api import TemporaryApi, start_temporary_api
from forecasting.settings import PROJECT_ROOT
from tests.conftest import write_csv


def idle_process(code: str = "import time; time.sleep(120)") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_run_without_an_api_records_its_flow_in_prefect_home_and_leaves_no_process(tmp_path, sample_slice):
    """As `make run` does on a fresh machine: no PREFECT_API_URL, a new PREFECT_HOME. The run publishes, its
    flow run is in PREFECT_HOME's database, and the server it started is gone when the command ends."""
    home = tmp_path / "prefect-home"
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT))
    command = [sys.executable, "-m", "flows.cli", "run", "--input", str(write_csv(sample_slice, tmp_path / "in.csv")),
               "--data-dir", str(tmp_path / "store"), "--max-epochs", "1"]
    # Its own process group, to look for leftovers below.
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert out.startswith("Published 42 forecast rows for 3 series")
    assert "Traceback" not in err and "/runs/flow-run/" not in err  # no link to a UI that is gone
    with sqlite3.connect(home / "prefect.db") as db:
        states = db.execute("SELECT state_type FROM flow_run WHERE name LIKE 'daily-%'").fetchall()
        flow_logs = [message for (message,) in db.execute(
            "SELECT message FROM log WHERE task_run_id IS NULL AND flow_run_id IS NOT NULL")]
    assert states == [("COMPLETED",)]
    # The flow's last log reached the API before the server stopped: the command sends Prefect's pending
    # logs itself, before the exit handlers that stop the server.
    assert any(message.startswith("Finished in state Completed") for message in flow_logs), flow_logs
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # neither the command nor its server is left running


def test_the_temporary_server_saves_and_loads_blocks_though_it_registers_no_block_types_at_its_start(tmp_path):
    """The temporary server skips Prefect's block-type check at its start (SERVER_ENVIRONMENT); a block saved
    through it registers its own type, and loads back (a Secret, as `database_secret` reads it)."""
    code = "\n".join([
        "from flows.local_api import start_temporary_api",
        "api = start_temporary_api()",
        "assert api.adopt()",
        "from prefect.blocks.system import Secret",
        "Secret(value='postgresql://u:p@h/db').save('lstm-forecast-db')",
        "print(Secret.load('lstm-forecast-db').get())",
    ])
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("postgresql://u:p@h/db")
    with sqlite3.connect(tmp_path / "prefect-home" / "prefect.db") as db:
        types = [slug for (slug,) in db.execute("SELECT slug FROM block_type")]
    assert types == ["secret"]  # the only type registered: the one saved, none at the server's start


def test_an_api_in_the_settings_is_left_alone(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    api = TemporaryApi(idle_process(), port=1)
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert api.adopt() is False
    assert api.process.poll() is not None and os.environ.get("PREFECT_API_URL") is None


def test_a_server_that_exits_before_it_answers_leaves_the_api_to_prefect(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    api = TemporaryApi(idle_process("raise SystemExit(3)"), port=1)  # uvicorn's exit code for a port in use
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert api.adopt() is False
    assert os.environ.get("PREFECT_API_URL") is None


def test_no_server_starts_where_the_environment_names_an_api_or_forbids_a_temporary_one(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert start_temporary_api() is None
    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.setenv("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "false")
    assert start_temporary_api() is None


def test_the_server_stops_with_the_command():
    api = TemporaryApi(idle_process(), port=1)
    api.stop()
    assert api.process.returncode == -signal.SIGTERM
