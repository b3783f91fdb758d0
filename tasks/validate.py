"""Stage 2, validation: a Great Expectations suite decides which rows and series are usable.

Cheap structural work happens first in pandas (restated rows resolved, identical duplicates collapsed,
data after the as-of set aside, per-series frequency and freshness derived as boolean columns). The GX
suite then checks meaning on every run's batch: schema, non-null keys and values, unique
`(series_id, timestamp)`, finite values, no absurd outliers, per-series regular frequency and freshness. Rows GX reports as
unexpected are quarantined with a reason naming file, row and value; the rest goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from tasks import storage
from tasks.columns import (RAW_TIMESTAMP, RAW_VALUE, REQUIRED, SERIES_ID, SOURCE_FILE, SOURCE_ROW, TIMESTAMP,
                           VALUE)
from tasks.errors import PipelineError
from tasks.frequency import frequency_change, infer_frequency, on_grid, periods_between
from tasks.ingest import INGEST_SEQ, read_series_store
from tasks.quarantine import quarantine_path, quarantine_records, write_quarantine
from tasks.settings import Settings

# Derived boolean columns the suite checks; True means "fine" (or "not applicable": reported elsewhere).
VALUE_IS_FINITE = "value_is_finite"
FREQUENCY_MATCHES_PANEL = "series_frequency_matches_panel"
ON_FREQUENCY_GRID = "on_frequency_grid"
SERIES_IS_FRESH = "series_is_fresh"
VALUE_IS_PLAUSIBLE = "value_is_plausible"
FREQUENCY_IS_STEADY = "series_frequency_is_steady"
CHECK_COLUMNS = (VALUE_IS_FINITE, VALUE_IS_PLAUSIBLE, FREQUENCY_MATCHES_PANEL, FREQUENCY_IS_STEADY, ON_FREQUENCY_GRID,
                 SERIES_IS_FRESH)
# Helper columns for the outlier check's reason; never part of the valid rows.
ROBUST_Z, SERIES_MEDIAN = "_robust_z", "_series_median"
HELPER_COLUMNS = (ROBUST_Z, SERIES_MEDIAN)
ROW_NUMBER = "_row"


@dataclass
class Batch:
    """Candidate rows for one run, with what was set aside before the suite ran."""

    rows: pd.DataFrame
    as_of: pd.Timestamp
    restated_rows: int = 0
    identical_duplicates: int = 0
    after_as_of: int = 0


def parse_as_of(as_of: str | pd.Timestamp | None) -> pd.Timestamp | None:
    """An ISO-8601 forecast origin in UTC (naive means UTC); None stays None."""
    if as_of is None or as_of == "":
        return None
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        raise PipelineError(f"--as-of {as_of!r} is not an ISO-8601 timestamp (e.g. 2016-12-31 or "
                            "2016-12-31T00:00:00Z)") from None
    if pd.isna(stamp):
        raise PipelineError(f"--as-of {as_of!r} is not a timestamp")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def prepare_batch(store: pd.DataFrame, as_of: pd.Timestamp | None) -> Batch:
    """Resolve restatements (a later file wins per key), collapse identical duplicates, cut at the as-of.

    Conflicting duplicates inside one file are kept: the suite's uniqueness check reports them.
    """
    rows = store
    keyed = rows[SERIES_ID].notna() & rows[TIMESTAMP].notna()
    latest_seq = rows[keyed].groupby([SERIES_ID, TIMESTAMP])[INGEST_SEQ].transform("max")
    restated = keyed.copy()
    restated[keyed] = rows.loc[keyed, INGEST_SEQ] < latest_seq
    rows = rows[~restated]
    identical = rows.duplicated([SERIES_ID, TIMESTAMP, VALUE], keep="first") & rows[SERIES_ID].notna() \
        & rows[TIMESTAMP].notna()
    rows = rows[~identical]
    resolved_as_of = as_of if as_of is not None else rows[TIMESTAMP].max()
    if pd.isna(resolved_as_of):
        raise PipelineError("no row in the store has a valid timestamp; nothing to forecast "
                            "(see the ingest warnings and <data-dir>/quarantine/)")
    after = rows[TIMESTAMP] > resolved_as_of
    rows = rows[~after].reset_index(drop=True)
    return Batch(rows=rows, as_of=resolved_as_of, restated_rows=int(restated.sum()),
                 identical_duplicates=int(identical.sum()), after_as_of=int(after.sum()))


def robust_z(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each finite value's distance from its series' median in robust standard deviations (1.4826 MAD),
    on a signed log scale, sign(x) * log1p(|x|): page views spike 100x for real, 1e300 is not real.
    NaN for non-finite values. Returns (z, series median on the original scale)."""
    value = rows[VALUE].astype("float64")
    value = value.where(np.isfinite(value))
    groups = rows[SERIES_ID].fillna("")
    warped = np.sign(value) * np.log1p(value.abs())
    median = warped.groupby(groups).transform("median")
    spread = (warped - median).abs().groupby(groups).transform("median") * 1.4826
    # A floor on the spread: a flat series (MAD 0) must not make every small change an outlier.
    scale = np.maximum(spread, np.maximum(0.01 * median.abs(), 1e-6))
    z = ((warped - median).abs() / scale).to_numpy()
    return z, (np.sign(median) * np.expm1(median.abs())).to_numpy()


def derive_checks(rows: pd.DataFrame, as_of: pd.Timestamp, max_staleness: int,
                  max_robust_z: float = 50.0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add the suite's derived boolean columns; returns (rows, facts) with per-series frequencies."""
    rows = rows.copy()
    value = rows[VALUE].to_numpy(dtype="float64")
    rows[VALUE_IS_FINITE] = np.isfinite(value) | np.isnan(value)  # NaN is the not-null check's to report
    rows[ROBUST_Z], rows[SERIES_MEDIAN] = robust_z(rows)
    rows[VALUE_IS_PLAUSIBLE] = ~(rows[ROBUST_Z] > max_robust_z)  # NaN (non-finite, missing) is reported elsewhere
    timed = rows[rows[TIMESTAMP].notna() & rows[SERIES_ID].notna()]
    # None (not NaN) where a series has too few timestamps to infer a frequency.
    frequencies = timed.groupby(SERIES_ID)[TIMESTAMP].agg(infer_frequency).astype(object)
    frequencies = frequencies.where(frequencies.notna(), None)
    known = frequencies.dropna()
    panel_frequency = known.value_counts().index[0] if not known.empty else None
    rows[FREQUENCY_MATCHES_PANEL] = True
    rows[FREQUENCY_IS_STEADY] = True
    rows[ON_FREQUENCY_GRID] = True
    changes: dict[str, tuple[pd.Timestamp, str]] = {}
    rows[SERIES_IS_FRESH] = True
    last_seen = timed.groupby(SERIES_ID)[TIMESTAMP].max()
    stale_periods: dict[str, int] = {}
    for series, group in timed.groupby(SERIES_ID).groups.items():
        freq = frequencies.get(series)
        if freq is None or freq != panel_frequency:
            rows.loc[group, FREQUENCY_MATCHES_PANEL] = False
            continue
        change = frequency_change(rows.loc[group, TIMESTAMP], freq)
        if change is not None:
            changes[series] = change
            rows.loc[group, FREQUENCY_IS_STEADY] = False
        rows.loc[group, ON_FREQUENCY_GRID] = on_grid(rows.loc[group, TIMESTAMP], freq)
        lag = periods_between(last_seen[series], as_of, freq)
        if lag > max_staleness:
            stale_periods[series] = lag
            rows.loc[group, SERIES_IS_FRESH] = False
    facts = {"panel_frequency": panel_frequency, "frequencies": frequencies.to_dict(),
             "last_seen": last_seen.to_dict(), "stale_periods": stale_periods, "max_robust_z": max_robust_z,
             "frequency_changes": changes}
    return rows, facts


def build_suite(gx: Any) -> Any:
    """The expectation suite run on every batch (GX 1.x API)."""
    e = gx.expectations
    suite = gx.ExpectationSuite(name="lstm_forecast_batch")
    for column in REQUIRED:
        suite.add_expectation(e.ExpectColumnToExist(column=column))
    for column in REQUIRED:
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=[SERIES_ID, TIMESTAMP]))
    for column in CHECK_COLUMNS:
        suite.add_expectation(e.ExpectColumnValuesToBeInSet(column=column, value_set=[True]))
    return suite


def run_suite(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Run the suite with GX; one dict per expectation: type, column(s), success, unexpected row positions."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry calls from a scheduled job
    import great_expectations as gx  # slow import (~3-5 s): only when a validation actually runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_definition = (context.data_sources.add_pandas("lstm_forecast")
                        .add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole"))
    suite = context.suites.add(build_suite(gx))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="lstm_forecast_batch", data=batch_definition, suite=suite))
    frame = rows.reset_index(drop=True)
    result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
    outcomes = []
    for item in result.results:
        kwargs = item.expectation_config.kwargs
        outcomes.append({
            "expectation": item.expectation_config.type,
            "column": kwargs.get("column") or ",".join(kwargs.get("column_list") or []),
            "success": bool(item.success),
            "unexpected_count": int(item.result.get("unexpected_count") or 0),
            "unexpected_rows": [int(i) for i in item.result.get("unexpected_index_list") or []],
            "error": (item.exception_info or {}).get("exception_message") if not item.success else None,
        })
    return outcomes


def explain(rows: pd.DataFrame, outcomes: list[dict[str, Any]], facts: dict[str, Any], as_of: pd.Timestamp,
            max_staleness: int, file_names: dict[str, str]) -> pd.Series:
    """One reason string per failing row position (index = row position), built from the GX outcomes."""
    reasons: dict[int, list[str]] = {}
    whole_series_rules = {FREQUENCY_MATCHES_PANEL, FREQUENCY_IS_STEADY, SERIES_IS_FRESH}
    for outcome in outcomes:
        if outcome["success"]:
            continue
        if outcome["expectation"] == "expect_column_to_exist":
            raise PipelineError(f"validation: required column '{outcome['column']}' is missing from the batch")
        for position in outcome["unexpected_rows"]:
            row = rows.iloc[position]
            where = f"{file_names.get(row[SOURCE_FILE], row[SOURCE_FILE])} row {row[SOURCE_ROW]}"
            text = _reason(outcome, row, facts, as_of, max_staleness)
            if outcome["column"] not in whole_series_rules:
                text = f"{where}: {text}"
            reasons.setdefault(position, []).append(text)
    return pd.Series({pos: "; ".join(dict.fromkeys(texts)) for pos, texts in reasons.items()}, dtype="string")


def _reason(outcome: dict[str, Any], row: pd.Series, facts: dict[str, Any], as_of: pd.Timestamp,
            max_staleness: int) -> str:
    kind, column = outcome["expectation"], outcome["column"]
    series = row[SERIES_ID]
    if kind == "expect_column_values_to_not_be_null":
        raw = row.get(RAW_TIMESTAMP if column == TIMESTAMP else RAW_VALUE)
        if column == TIMESTAMP and isinstance(raw, str):
            return f"timestamp {raw!r} is not an ISO-8601 timestamp"
        if column == VALUE and isinstance(raw, str):
            return f"value {raw!r} is not a number"
        return f"{column} is missing"
    if kind == "expect_compound_columns_to_be_unique":
        return f"conflicting duplicate rows for series {series!r} at {row[TIMESTAMP].isoformat()} in one file"
    if column == VALUE_IS_FINITE:
        return f"value {row[VALUE]} is not finite"
    if column == VALUE_IS_PLAUSIBLE:
        return (f"value {row[VALUE]:g} of series {series!r} is an absurd outlier: {row[ROBUST_Z]:.3g} robust "
                f"standard deviations from the series median {row[SERIES_MEDIAN]:.6g} (limit max_robust_z = "
                f"{facts['max_robust_z']:g})")
    if column == ON_FREQUENCY_GRID:
        return (f"timestamp {row[TIMESTAMP].isoformat()} is off the {facts['frequencies'].get(series)} grid "
                f"of series {series!r}")
    if column == FREQUENCY_MATCHES_PANEL:
        freq = facts["frequencies"].get(series)
        if freq is None:
            return f"series {series!r} has fewer than 2 valid timestamps; its frequency cannot be inferred"
        return (f"series {series!r} has frequency {freq}, the panel's is {facts['panel_frequency']}; "
                "run it separately with --input")
    if column == FREQUENCY_IS_STEADY:
        since, spacing = facts["frequency_changes"][series]
        return (f"series {series!r} changed frequency: {facts['frequencies'].get(series)} before, every {spacing} "
                f"since {since.isoformat()}; gap-filling would invent most recent points, so it is held back "
                "(fix the source, or run the new frequency separately)")
    if column == SERIES_IS_FRESH:
        return (f"series {series!r} is stale: last observation {facts['last_seen'][series].isoformat()} is "
                f"{facts['stale_periods'][series]} periods before the as-of {as_of.isoformat()} "
                f"(limit {max_staleness})")
    return f"failed {kind} on {column}"


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    outcomes: list[dict[str, Any]]
    facts: dict[str, Any]
    batch: Batch
    covariates: list[str] = field(default_factory=list)


def validate(store: pd.DataFrame, as_of: pd.Timestamp | None, max_staleness: int,
             file_names: dict[str, str] | None = None, max_robust_z: float = 50.0) -> ValidationResult:
    """Validate the store's rows up to the as-of; returns valid rows and quarantine records with reasons."""
    if store.empty:
        raise PipelineError("the series store is empty: no input file has been ingested successfully "
                            "(see the ingest warnings and <data-dir>/quarantine/ingest/)")
    batch = prepare_batch(store, as_of)
    rows, facts = derive_checks(batch.rows, batch.as_of, max_staleness, max_robust_z)
    outcomes = run_suite(rows)
    reasons = explain(rows, outcomes, facts, batch.as_of, max_staleness, file_names or {})
    failing = np.zeros(len(rows), dtype=bool)
    failing[reasons.index.to_numpy(dtype=int)] = True
    bad_rows = rows[failing]
    quarantined = quarantine_records(bad_rows, stage="validate", reason=reasons.sort_index().to_numpy())
    covariates = [c for c in rows.columns if c not in (*REQUIRED, *CHECK_COLUMNS, *HELPER_COLUMNS, SOURCE_FILE,
                                                      SOURCE_ROW, RAW_TIMESTAMP, RAW_VALUE, INGEST_SEQ)]
    covariates = [c for c in covariates if rows[c].notna().any()]
    valid = rows.loc[~failing, [SERIES_ID, TIMESTAMP, VALUE, *covariates]]
    valid = valid.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    return ValidationResult(valid=valid, quarantined=quarantined, outcomes=outcomes, facts=facts, batch=batch,
                            covariates=covariates)


def summary_markdown(result: ValidationResult, run_date: date) -> str:
    """The validation artifact: expectations, counts and the first reasons."""
    valid_series = result.valid[SERIES_ID].nunique()
    lines = [
        f"# Validation {run_date.isoformat()} (as-of {result.batch.as_of.isoformat()})",
        "",
        f"- rows checked: {len(result.batch.rows)}; valid: {len(result.valid)} in {valid_series} series; "
        f"quarantined: {len(result.quarantined)}",
        f"- panel frequency: {result.facts['panel_frequency']}; restated rows replaced by later files: "
        f"{result.batch.restated_rows}; identical duplicates collapsed: {result.batch.identical_duplicates}; "
        f"rows after the as-of left for later runs: {result.batch.after_as_of}",
        "",
        "| expectation | column | success | unexpected |",
        "|---|---|---|---|",
    ]
    lines += [f"| {o['expectation']} | {o['column']} | {'yes' if o['success'] else 'NO'} | {o['unexpected_count']} |"
              for o in result.outcomes]
    if len(result.quarantined):
        lines += ["", "## Quarantined (first 20 reasons)", ""]
        counts = result.quarantined["reason"].value_counts()
        lines += [f"- {count} x {reason}" for reason, count in counts.head(20).items()]
    return "\n".join(lines)


@task(name="validate")
def validate_batch(settings: Settings, as_of: str | None) -> dict[str, Any]:
    """Prefect task: validate the store, quarantine failures, write valid rows for the run's date."""
    from prefect.artifacts import create_markdown_artifact

    log = get_run_logger()
    started = time.perf_counter()
    data_dir = settings.data_dir
    manifest = storage.read_json(data_dir / "raw" / "manifest.json", default={})
    result = validate(read_series_store(data_dir), parse_as_of(as_of), settings.max_staleness,
                      file_names={digest: entry["original_name"] for digest, entry in manifest.items()},
                      max_robust_z=settings.max_robust_z)
    run_date = result.batch.as_of.date()
    write_quarantine(result.quarantined, quarantine_path(data_dir, run_date, "validate"))
    for reason, count in result.quarantined["reason"].value_counts().head(20).items():
        log.warning("Quarantined %d row(s): %s", count, reason)
    markdown = summary_markdown(result, run_date)
    create_markdown_artifact(markdown=markdown, key="validation-summary",
                             description="Great Expectations results and quarantined rows")
    if result.valid.empty:
        raise PipelineError(
            f"nothing valid is left after validation ({len(result.quarantined)} row(s) quarantined; reasons in "
            f"{quarantine_path(data_dir, run_date, 'validate')}). Most common: "
            f"{result.quarantined['reason'].value_counts().index[0] if len(result.quarantined) else 'n/a'}")
    valid_path = storage.partition_dir(data_dir / "validated", run_date) / "observations.parquet"
    storage.write_parquet(result.valid, valid_path)
    log.info("Validation: %d valid rows in %d series, %d quarantined; frequency %s; as-of %s",
             len(result.valid), result.valid[SERIES_ID].nunique(), len(result.quarantined),
             result.facts["panel_frequency"], result.batch.as_of.isoformat())
    return {
        "as_of": result.batch.as_of.isoformat(),
        "run_date": run_date.isoformat(),
        "frequency": result.facts["panel_frequency"],
        "valid_path": str(valid_path),
        "rows_checked": len(result.batch.rows),
        "rows_valid": len(result.valid),
        "rows_quarantined": len(result.quarantined),
        "series_valid": int(result.valid[SERIES_ID].nunique()),
        "covariates": result.covariates,
        "failed_expectations": [o["expectation"] + ":" + o["column"] for o in result.outcomes if not o["success"]],
        "duration_s": round(time.perf_counter() - started, 3),
    }
