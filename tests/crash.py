"""Run the console script in this process with a crash injected: the process kills itself (SIGKILL, no
cleanup, no finally blocks) at a chosen point of a write, as a power cut or the OOM killer would.

    python -m tests.crash <point> <lstm-forecast arguments...>

Points:
- windows-between-files: after the windows' series.parquet, before their index.parquet;
- model-mid-folder: a model version's folder half written (model.keras and scalers.json, no metadata.json);
- forecasts-mid-file: the staged forecasts Parquet file half written;
- forecasts-after-commit: after the SQL transaction committed, before the Parquet file is renamed into place.
"""

from __future__ import annotations

import os
import signal
import sys


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def inject(point: str) -> None:
    from stores import files
    from stores import forecasts as forecast_store

    if point == "windows-between-files":
        original = files.write_parquet

        def write_parquet(frame, target):
            if target.name == "index.parquet" and target.parent.parent.name == "windows":
                die()
            return original(frame, target)

        files.write_parquet = write_parquet
    elif point == "model-mid-folder":
        original_json = files.write_json

        def write_json(payload, target):
            if target.name == "metadata.json" and target.parent.name.endswith(".tmp"):
                die()
            return original_json(payload, target)

        files.write_json = write_json
    elif point == "forecasts-mid-file":
        original_table = forecast_store.pq.write_table

        def write_table(table, where, *args, **kwargs):
            original_table(table, where, *args, **kwargs)
            size = os.path.getsize(where)
            with open(where, "r+b") as handle:
                handle.truncate(size // 2)
            die()

        forecast_store.pq = type("pq", (), {"write_table": staticmethod(write_table)})
    elif point == "forecasts-after-commit":
        original_sql = forecast_store.replace_sql_rows

        def replace_sql_rows(*args, **kwargs):
            original_sql(*args, **kwargs)
            die()

        forecast_store.replace_sql_rows = replace_sql_rows
    else:
        raise SystemExit(f"unknown crash point {point!r}")


if __name__ == "__main__":
    import flows  # noqa: F401 - environment defaults first
    from flows.cli import main

    inject(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
