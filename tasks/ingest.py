"""Stage 1, ingestion (the Prefect task): archive new raw files unchanged, parse them and add them to the
series store (stores/archive.py); fail with the reason when the store holds no usable file."""

from __future__ import annotations


from prefect import get_run_logger, task

from forecasting.errors import PipelineError
from forecasting.settings import Settings
from stores.archive import IngestSummary, ingest
from tasks.retry import retrying


@task(name="ingest", **retrying())
def ingest_files(settings: Settings) -> IngestSummary:
    """Prefect task: ingest new files from `settings.input_path` into the store under `settings.data_dir`."""
    log = get_run_logger()
    summary = ingest(settings.input_path, settings.data_dir, log=log)
    log.info("Ingest: %d file(s) seen, %d new (%d rows), %d already ingested, %d rejected, %d ignored",
             summary.files_seen, summary.files_new, summary.rows_new, summary.files_already_ingested,
             len(summary.files_rejected), len(summary.files_ignored))
    if summary.unusable:
        raise PipelineError(summary.unusable)
    return summary
