"""Stage 2, validation (the Prefect task): validate the store's rows (forecasting/validation.py), in full or
incrementally on the base run's state, quarantine failures and write the run's valid rows and state."""

from __future__ import annotations

import time

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from forecasting.columns import SERIES_ID, TIMESTAMP
from forecasting.errors import PipelineError
from forecasting.results import Validated
from forecasting.settings import Settings
from forecasting.validation import (FUTURE_TOLERANCE, newest_observable, parse_as_of, series_state, summary_markdown,
                                   validate, validate_incremental)
from stores import files
from stores.archive import has_news, read_manifest, read_series_store, store_newest, store_position
from stores.quarantine import quarantine_path, write_quarantine
from stores.snapshots import VALIDATION_SETTINGS, find_base, full_run_reason, settings_of, write_state
from tasks.retry import retrying

# Distinct quarantine reasons the task logs one line each for; the rest get one line with their count.
LOGGED_REASONS = 20


def quarantine_lines(reasons: pd.Series, path: object, limit: int = LOGGED_REASONS) -> list[str]:
    """The log's account of quarantined rows: a line per reason, most frequent first, for `limit` reasons,
    then one line for the rest (row-level reasons name their row, so a long run of missing values would
    otherwise be one line per row, or silently cut off) pointing to the quarantine file at `path`."""
    counts = reasons.value_counts()
    lines = [f"Quarantined {count} row(s): {reason}" for reason, count in counts.head(limit).items()]
    if len(counts) > limit:
        lines.append(f"Quarantined {counts.iloc[limit:].sum()} more row(s) for {len(counts) - limit} other "
                     f"reason(s): see {path}")
    return lines


@task(name="validate", **retrying())
def validate_batch(settings: Settings, as_of: str | None) -> Validated:
    """Prefect task: validate the store, quarantine failures, write valid rows for the run's date."""
    log = get_run_logger()
    started = time.perf_counter()
    data_dir = settings.data_dir
    manifest = read_manifest(data_dir)
    file_names = {digest: entry["original_name"] for digest, entry in manifest.items()}
    requested = parse_as_of(as_of)
    now = pd.Timestamp.now(tz="UTC")  # rows dated over a day later cannot have been observed (FUTURE_TOLERANCE)
    store = None
    resolved = requested if requested is not None else store_newest(manifest)
    if requested is None and (resolved is None or resolved > now + FUTURE_TOLERANCE):
        # An older manifest without timestamps, or a file with a row dated in the future: the store knows
        # the newest row that can have been observed.
        store = read_series_store(data_dir, manifest=manifest)
        resolved = newest_observable(store[TIMESTAMP], now) if not store.empty else None
    base = find_base(data_dir, resolved) if resolved is not None and pd.notna(resolved) else None
    full_reason = full_run_reason(settings, base, resolved)
    if full_reason is None:
        base_valid = files.read_parquet(files.partition_dir(data_dir / "validated", base.run_date)
                                        / "observations.parquet")
        # Only files that can hold rows new since the base; rebuilt series are read from every file.
        store = read_series_store(data_dir, wanted=lambda entry: has_news(entry, base), manifest=manifest)
        result, increment, state = validate_incremental(
            store, base, base_valid, resolved, settings.max_staleness, file_names, settings.max_robust_z,
            history=lambda ids: read_series_store(data_dir, series=ids, manifest=manifest), now=now)
        rebuilt, full_as_of = increment.rebuilt, base.full_as_of
        log.info("Incremental validation on the run of %s: %d new row(s) of %d carried series checked against "
                 "their kept state; %d series rebuilt in full (%s)", base.run_date, len(result.batch.rows),
                 len(increment.carried), len(rebuilt),
                 ", ".join(f"{n} {why}" for why, n in increment.reasons.items() if n) or "none")
    else:
        store = read_series_store(data_dir, manifest=manifest) if store is None else store
        result = validate(store, requested, settings.max_staleness, file_names=file_names,
                          max_robust_z=settings.max_robust_z, now=now)
        state, rebuilt, full_as_of = series_state(result.valid, result.facts), None, result.batch.as_of
        log.info("Full validation of %d rows: %s", len(result.batch.rows), full_reason)
    run_date = result.batch.as_of.date()
    write_quarantine(result.quarantined, quarantine_path(data_dir, run_date, "validate"))
    for line in quarantine_lines(result.quarantined["reason"], quarantine_path(data_dir, run_date, "validate")):
        log.warning(line)
    markdown = summary_markdown(result, run_date)
    create_markdown_artifact(markdown=markdown, key="validation-summary",
                             description="Great Expectations results and quarantined rows")
    if result.valid.empty:
        raise PipelineError(
            f"nothing valid is left after validation ({len(result.quarantined)} row(s) quarantined; reasons in "
            f"{quarantine_path(data_dir, run_date, 'validate')}). Most common: "
            f"{result.quarantined['reason'].value_counts().index[0] if len(result.quarantined) else 'n/a'}")
    valid_path = files.partition_dir(data_dir / "validated", run_date) / "observations.parquet"
    files.write_parquet(result.valid, valid_path)
    write_state(valid_path.parent, as_of=result.batch.as_of, full_as_of=full_as_of,
                max_seq=store_position(manifest), panel_frequency=result.facts["panel_frequency"],
                settings=settings_of(settings, VALIDATION_SETTINGS), series=state,
                base_run_date=base.run_date if full_reason is None else None, rebuilt=rebuilt or [])
    log.info("Validation: %d valid rows in %d series, %d quarantined; frequency %s; as-of %s",
             len(result.valid), result.valid[SERIES_ID].nunique(), len(result.quarantined),
             result.facts["panel_frequency"], result.batch.as_of.isoformat())
    return Validated(
        as_of=result.batch.as_of.isoformat(),
        run_date=run_date.isoformat(),
        frequency=result.facts["panel_frequency"],
        valid_path=str(valid_path),
        rows_checked=len(result.batch.rows),
        mode="full" if full_reason else "incremental",
        full_reason=full_reason,
        base_run_date=base.run_date.isoformat() if full_reason is None else None,
        base_as_of=base.as_of.isoformat() if full_reason is None else None,
        series_rebuilt=len(rebuilt) if rebuilt is not None else None,
        rows_valid=len(result.valid),
        rows_quarantined=len(result.quarantined),
        series_valid=int(result.valid[SERIES_ID].nunique()),
        covariates=result.covariates,
        failed_expectations=[o["expectation"] + ":" + o["column"] for o in result.outcomes if not o["success"]],
        duration_s=round(time.perf_counter() - started, 3),
    )
