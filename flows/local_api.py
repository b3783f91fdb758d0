"""Prefect's temporary API server, started the moment a command starts instead of when its flow does.

Without an API URL, Prefect starts a temporary API server for a flow run: when the flow first needs the
API, it imports its own server package in the command's process (about 2 s on two cores), starts uvicorn
in a subprocess and waits, idle, until the server answers (4-5 s; longer where its database is created
first). Started here before the command imports Prefect and the pipeline, the server comes up on the other
core while those imports run, and the command's process never imports Prefect's server package.

It is the server Prefect would start (prefect/server/api/server.py, SubprocessASGIServer): the same
uvicorn command, app factory and server environment (but for block-type registration, see
SERVER_ENVIRONMENT), and the same PREFECT_HOME database. `adopt()` hands
it to Prefect as the API URL only where Prefect would have started a temporary server itself: no API URL
in the environment, a profile or prefect.toml, and ephemeral mode allowed. Otherwise, or where the server
does not answer in time, it is stopped and Prefect goes its usual way.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# What Prefect's SubprocessASGIServer sets for the server it starts (no UI; it is the final, ephemeral app),
# and one thing it does not: registering block types. Prefect's server checks at every start whether the
# installed block types are in its database (it imports every installed Prefect collection, prefect-dask's
# Dask among them, and hashes their schemas: 0.6-0.9 s of a 4-5 s start on two cores, while the command
# waits for it). A command's flows load only the blocks a user saved (a Secret, a notification block), whose
# types were registered when they were saved; Prefect's own servers still register types as before.
SERVER_ENVIRONMENT = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
                      "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
                      "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false"}
STOP_GRACE_SECONDS = 5


class TemporaryApi:
    """A Prefect API server in a subprocess of this command, stopped when the command exits."""

    def __init__(self, process: subprocess.Popen, port: int):
        self.process, self.port = process, port
        self.url = f"http://127.0.0.1:{port}/api"
        atexit.register(self.stop)  # whatever happens next; `adopt` moves it to where Prefect has its own

    def adopt(self) -> bool:
        """Make this server Prefect's API for the rest of the process where Prefect would otherwise start a
        temporary server itself; stop it and return False where it would not, or where it did not start."""
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:  # the user's profile names an API
            self.stop()
            return False
        if not self.wait_ready(settings.server.ephemeral.startup_timeout_seconds):
            self.stop()  # Prefect starts its own, with its own retries and error message
            return False
        # Stopped where Prefect stops the temporary server it starts: after the flow's last logs and events
        # are sent (their exit handlers are registered later and run earlier: atexit runs last in, first
        # out), before Prefect's own exit handlers from its import shut its event loop down.
        atexit.unregister(self.stop)
        atexit.register(self.stop)
        os.environ["PREFECT_API_URL"] = self.url
        # A temporary server serves no UI, so no run gets a "View at" link that is dead once the command exits.
        os.environ.setdefault("PREFECT_UI_URL", "")
        refresh_global_settings_context()  # Prefect read its settings when it was imported
        return True

    def wait_ready(self, timeout: float) -> bool:
        """Poll the server's health endpoint until it answers (True), exits or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_temporary_api() -> TemporaryApi | None:
    """Start Prefect's temporary API server unless the environment names an API or forbids ephemeral mode;
    None where it does not start (Prefect then decides as usual)."""
    if os.environ.get("PREFECT_API_URL") or _false(os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED")) \
            or _false(os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE")):
        return None
    spec = importlib.util.find_spec("prefect")  # where Prefect lies, without importing it
    if spec is None or spec.origin is None:
        return None
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent),
               "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "error", "--lifespan", "on"]
    try:
        process = subprocess.Popen(command, env={**os.environ, **SERVER_ENVIRONMENT})
    except OSError:
        return None
    return TemporaryApi(process, port)


def _free_port() -> int:
    """A port no one listens on now (the OS picks it); if it is taken before uvicorn binds it, the server
    exits and `adopt` leaves the API to Prefect."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _false(value: str | None) -> bool:
    return value is not None and value.strip().lower() in {"0", "false", "no", "off"}
