"""One-time setup of a Prefect server for this project: the work pool and the `gpu` concurrency limit.

    lstm-forecast setup [--gpu-slots 1] [--pool lstm-forecast]

Idempotent: what exists already is reported and left as it is (or, for the limit, set to --gpu-slots).
Tags used by the flows' tasks: `gpu` on the train, backtest and grid-search tasks (the limit keeps that
many of them running at once across all runs); `lstm-forecast` on every deployment.
"""

from __future__ import annotations

from typing import Any

GPU_TAG = "gpu"
DEFAULT_POOL = "lstm-forecast"


def setup_server(pool: str = DEFAULT_POOL, gpu_slots: int = 1) -> dict[str, Any]:
    """Create (or keep) the process work pool `pool` and a task concurrency limit of `gpu_slots` on tag `gpu`."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    done: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        try:
            # The same default job template `prefect work-pool create --type process` uses.
            client.create_work_pool(WorkPoolCreate(
                name=pool, type="process", base_job_template=ProcessWorker.get_default_base_job_template()))
            done["work_pool"] = f"created work pool {pool!r} (type process)"
        except ObjectAlreadyExists:
            done["work_pool"] = f"work pool {pool!r} already exists"
        # create_concurrency_limit upserts: an existing limit on the tag is set to the new value.
        client.create_concurrency_limit(tag=GPU_TAG, concurrency_limit=gpu_slots)
        limit = client.read_concurrency_limit_by_tag(GPU_TAG)
        done["gpu_limit"] = f"task concurrency limit on tag {GPU_TAG!r}: {limit.concurrency_limit} slot(s)"
    return done
