"""The team's path, for real: a `prefect server` on a free local port, the flows served as scheduled
deployments by `lstm-forecast serve`, a run triggered by hand with `prefect deployment run`, and its state,
task runs and artifacts read back through the Prefect client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prefect.exceptions import ObjectNotFound

from forecasting.settings import PROJECT_ROOT
from tests.conftest import write_csv

pytestmark = pytest.mark.xdist_group("test_server")  # one worker: its module fixtures run once

VENV_BIN = Path(sys.executable).parent
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}:\n"
                                 f"{process.stdout.read()[-3000:] if process.stdout else ''}")
        try:
            result = check()
            if result:
                return result
        except (httpx.HTTPError, OSError, ObjectNotFound):  # not up, or not registered, yet
            pass
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real `prefect server start` (SQLite under a temporary PREFECT_HOME) on a free port; yields (url, env)."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
           "PYTHONPATH": str(PROJECT_ROOT)}
    log = open(home / "server.log", "w+")
    server = subprocess.Popen([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, STARTUP_SECONDS,
                 "prefect server to answer /api/health", server)
        yield url, env
    finally:
        stop(server)
        log.close()


def test_a_served_deployment_runs_by_hand_on_a_real_server(prefect_api, tmp_path, sample_slice):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, env = prefect_api
    inbox = write_csv(sample_slice, tmp_path / "inbox" / "part.csv").parent
    serve_log = open(tmp_path / "serve.log", "w+")
    serve = subprocess.Popen([str(VENV_BIN / "lstm-forecast"), "serve", "--cron", "0 6 * * *"], cwd=tmp_path,
                             env=env, stdout=serve_log, stderr=subprocess.STDOUT)
    try:
        with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            deployment = wait_for(lambda: client.read_deployment_by_name("daily-forecast/daily"), 90,
                                  "the served deployment to register", serve)
            schedule = deployment.schedules[0].schedule
            assert schedule.cron == "0 6 * * *" and schedule.timezone == "UTC" and deployment.schedules[0].active

            # A manual run, as a user would start it from a shell (the UI's Run button does the same).
            started = subprocess.run(
                [str(VENV_BIN / "prefect"), "deployment", "run", "daily-forecast/daily",
                 "--param", f"input_path={inbox}", "--param", f"data_dir={tmp_path / 'store'}",
                 "--param", "as_of=2016-12-24", "--param", "horizon=7", "--param", "lookback=14",
                 "--param", "max_epochs=2"],
                env=env, capture_output=True, text=True, timeout=120)
            assert started.returncode == 0, started.stdout + started.stderr
            flow_run_id = next(line.split()[-1] for line in started.stdout.splitlines() if "UUID" in line)

            final = wait_for(lambda: (lambda run: run if run.state and run.state.is_final() else None)(
                client.read_flow_run(flow_run_id)), 240, "the manual run to finish", serve)
            assert final.state.is_completed(), final.state.message
            assert final.name == "daily-asof-2016-12-24"

            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[final.id])))
            names = {run.name.rsplit("-", 1)[0] for run in task_runs}
            assert {"ingest", "validate", "gap-fill-chunk", "gap-fill", "windows", "train", "explain",
                    "accuracy", "publish"} <= names
            assert all(run.state.is_completed() for run in task_runs)

            artifacts = {artifact.key for artifact in client.read_artifacts() if artifact.flow_run_id == final.id}
            assert {"validation-summary", "forecast-table", "run-metrics", "model-comparison", "run-report",
                    "feature-importance", "realised-accuracy"} <= artifacts
    finally:
        stop(serve)
        serve_log.close()
