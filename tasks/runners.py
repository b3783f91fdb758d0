"""Where the per-series stages run: threads in the flow's process, or a Dask cluster.

Setting `task_runner`:
- `threads` (default): Prefect's ThreadPoolTaskRunner, in the flow's own process;
- `dask`: a temporary local Dask cluster of `dask_workers` worker processes, started for the stage;
- `dask:<scheduler address>` (e.g. `dask:tcp://10.0.0.5:8786`): an existing Dask cluster.

The per-series stages split the panel into chunks of `fanout_series` series and submit one Prefect task
per chunk to that runner, so the chunks show up as task runs of the flow run whatever runs them. Chunk
tasks exchange file paths and small summaries, never DataFrames, so nothing large crosses processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forecasting.settings import DASK_PREFIX, validate_runner_spec


def fanout_runner(spec: str, dask_workers: int = 2) -> Any:
    """A fresh, not yet started Prefect task runner for `spec` (use it as a context manager)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    spec = validate_runner_spec(spec)
    if spec == "threads":
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if spec == "dask":
        # Worker processes, one thread each: the chunks are pandas/numpy work that holds the GIL.
        return DaskTaskRunner(cluster_kwargs={"n_workers": dask_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return DaskTaskRunner(address=spec[len(DASK_PREFIX):])


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    """`items` in consecutive chunks of at most `size` (at least one chunk, possibly empty)."""
    chunks = [list(items[start:start + size]) for start in range(0, len(items), size)]
    return chunks or [[]]
