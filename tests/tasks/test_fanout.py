"""Per-series stages fan out over the configured task runner: threads, or a local 2-worker Dask cluster."""

from __future__ import annotations

import pandas as pd
import pytest
from prefect import flow

from forecasting.results import Filled
from forecasting.settings import load_settings
from stores import files
from tasks.gapfill import fill_gaps
from tasks.ingest import ingest_files
from tasks.runners import chunked, validate_runner_spec
from tasks.validate import validate_batch
from tests.conftest import write_csv


@flow(name="fan-out-check")
def ingest_validate_fill(input_path: str, data_dir: str, task_runner: str) -> Filled:
    settings = load_settings(input_path=input_path, data_dir=data_dir, task_runner=task_runner, fanout_series=1)
    ingest_files(settings)
    validated = validate_batch(settings, None)
    return fill_gaps(settings, validated)


def test_gap_fill_on_a_local_dask_cluster_matches_threads(prefect_server, tmp_path, sample_slice):
    holes = sample_slice.drop(index=sample_slice.index[[10, 11, 12, 200, 350]])  # gaps in several series
    source = write_csv(holes, tmp_path / "inbox" / "part.csv")
    on_threads = ingest_validate_fill(str(source), str(tmp_path / "threads"), "threads")
    on_dask = ingest_validate_fill(str(source), str(tmp_path / "dask"), "dask")

    assert on_dask.chunks == on_threads.chunks == 3  # one task per series (fanout_series=1)
    assert on_dask.workers == 2  # the chunks ran in both worker processes, not in the flow's
    assert on_threads.workers == 1
    assert on_dask.imputed == on_threads.imputed == 5
    pd.testing.assert_frame_equal(files.read_parquet(on_dask.clean_path),
                                  files.read_parquet(on_threads.clean_path))


def test_chunk_tasks_are_task_runs_of_the_flow_run(prefect_server, tmp_path, sample_slice):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    source = write_csv(sample_slice, tmp_path / "inbox" / "part.csv")
    state = ingest_validate_fill(str(source), str(tmp_path / "store"), "threads", return_state=True)

    async def task_names() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            return sorted(run.name.rsplit("-", 1)[0] for run in runs)  # "gap-fill-chunk-a1b" -> "gap-fill-chunk"

    import asyncio

    names = asyncio.run(task_names())
    assert names.count("gap-fill-chunk") == 3
    assert names.count("gap-fill") == 1


def test_runner_setting_is_checked():
    assert validate_runner_spec("dask:tcp://127.0.0.1:8786") == "dask:tcp://127.0.0.1:8786"
    with pytest.raises(ValueError, match="task_runner 'ray'"):
        load_settings(task_runner="ray")
    assert chunked(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert chunked([], 5) == [[]]
