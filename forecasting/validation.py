"""Validation: a Great Expectations suite decides which rows and series are usable.

Cheap structural work happens first in pandas (restated rows resolved, identical duplicates collapsed,
data after the as-of set aside, per-series frequency and freshness derived as boolean columns). The GX
suite then checks meaning on every run's batch: schema, non-null keys and values, unique
`(series_id, timestamp)`, finite values, no absurd outliers, per-series regular frequency and freshness. Rows GX reports as
unexpected are quarantined with a reason naming file, row and value; the rest goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable

import numpy as np
import pandas as pd

from forecasting.columns import (INGEST_SEQ, RAW_TIMESTAMP, RAW_VALUE, REQUIRED, SERIES_ID, SOURCE_FILE, SOURCE_ROW,
                                 TIMESTAMP, VALUE)
from forecasting.errors import PipelineError
from forecasting.frequency import (FrequencyDefaults, defaults_for, fixed_step, frequency_change, infer_frequency,
                                   on_grid, on_grid_from, periods_between, periods_since)
from forecasting.quarantine import quarantine_records
from forecasting.rows import append_rows, in_series, tail_rows

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
    future: pd.DataFrame | None = None  # rows dated after the run's clock (see FUTURE_TOLERANCE): quarantined
    now: pd.Timestamp | None = None  # the run's clock, where the future rule applied


# A row dated more than this after the run's clock cannot have been observed: a typo (2099 for 2019), a
# misread epoch, a wrong time zone. Without this, the run's as-of (the newest timestamp) became that date
# and every other series was quarantined as stale. A day covers naive local timestamps read as UTC in any
# time zone (at most 14 hours ahead).
FUTURE_TOLERANCE = pd.Timedelta(days=1)


def newest_observable(timestamps: pd.Series, now: pd.Timestamp) -> pd.Timestamp | None:
    """The newest of `timestamps` no later than FUTURE_TOLERANCE after `now` (None: none is)."""
    newest = timestamps[timestamps <= now + FUTURE_TOLERANCE].max()
    return None if pd.isna(newest) else newest


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


def prepare_batch(store: pd.DataFrame, as_of: pd.Timestamp | None, now: pd.Timestamp | None = None) -> Batch:
    """Resolve restatements (a later file wins per key), collapse identical duplicates, cut at the as-of.

    Conflicting duplicates inside one file are kept: the suite's uniqueness check reports them. With the
    run's clock `now`, rows after the as-of that are also over FUTURE_TOLERANCE after `now` are set aside as
    `future` (to quarantine), not left for later runs, and the default as-of is the newest other row.
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
    future = pd.Series(False, index=rows.index)
    if now is not None:
        future = (rows[TIMESTAMP] > now + FUTURE_TOLERANCE).fillna(False).astype(bool)
    resolved_as_of = as_of if as_of is not None else rows.loc[~future, TIMESTAMP].max()  # = newest_observable
    if pd.isna(resolved_as_of):
        observable = f" up to a day after this run's clock ({now.isoformat(timespec='minutes')})" \
            if future.any() else ""
        raise PipelineError(f"no row in the store has a valid timestamp{observable}; nothing to forecast (see the "
                            "ingest warnings and <data-dir>/quarantine/)")
    after = (rows[TIMESTAMP] > resolved_as_of).fillna(False).astype(bool)
    future &= after  # an explicit as-of beyond the clock (synthetic or test data) keeps its rows
    batch_rows = rows[~after].reset_index(drop=True)
    return Batch(rows=batch_rows, as_of=resolved_as_of, restated_rows=int(restated.sum()),
                 identical_duplicates=int(identical.sum()), after_as_of=int((after & ~future).sum()),
                 future=rows[future] if future.any() else None, now=now)


def _warp(values: pd.Series) -> pd.Series:
    """sign(x) * log1p(|x|) of the finite values (NaN elsewhere): page views spike 100x for real, 1e300
    is not real, and on this scale the first is a few units away from the median, the second hundreds."""
    value = values.astype("float64")
    value = value.where(np.isfinite(value))
    return np.sign(value) * np.log1p(value.abs())


# Quantiles of a series' absolute deviations from its median, each with the factor that makes it a standard
# deviation for normal noise (1 / the normal quantile of (1 + q) / 2). The spread is the first that is not
# zero: the median one (the MAD) for most series; a higher one where more than half of the values are the
# same, as an intermittent series' zeros are (80% zeros made every sale of 1 to 7 units an "absurd outlier"
# a million robust deviations from the median, and all of them were quarantined). Capped below the maximum,
# so one absurd value never becomes the spread that measures it.
SPREAD_QUANTILES = ((0.5, 1.4826), (0.75, 0.8695), (0.9, 0.6080), (0.95, 0.5102), (0.99, 0.3882))
# The least spread, on the warped scale, is 1% of the median's size. A series with no spread at all (99%
# of its values the same) gets at least 1% of a million's (0.14): at max_robust_z 50, one that is nearly
# always zero then calls a value absurd only beyond about 1,000, not every value that is not zero.
FLAT_FLOOR = 0.01 * float(np.log1p(1e6))


def robust_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Per series (index): the median of the warped values and their robust spread (1.4826 MAD, or a higher
    quantile of the deviations where the MAD is zero: SPREAD_QUANTILES), at least 1% of the median's size
    (FLAT_FLOOR where the series has no spread)."""
    warped = _warp(rows[VALUE])
    groups = rows[SERIES_ID].fillna("").to_numpy()
    median = warped.groupby(groups).median()
    deviations = (warped - median.reindex(groups).to_numpy()).abs()
    spread = pd.Series(0.0, index=median.index)
    for quantile, factor in SPREAD_QUANTILES:
        flat = spread.index[~(spread > 0)]  # NaN too: a series without a finite value has no spread
        if flat.empty:
            break
        rows_of_flat = pd.Index(groups).isin(flat)
        spread.loc[flat] = deviations[rows_of_flat].groupby(groups[rows_of_flat]).quantile(quantile) \
            .reindex(flat).to_numpy() * factor
    spread = spread.fillna(0.0)
    floor = np.where(spread > 0, 0.01 * median.abs(), np.maximum(0.01 * median.abs(), FLAT_FLOOR))
    scale = np.maximum(spread, floor)
    stats = pd.DataFrame({"median": median, "scale": scale})
    stats.index.name = SERIES_ID
    return stats


def robust_z(rows: pd.DataFrame, stats: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each finite value's distance from its series' median in robust standard deviations, on the warped
    scale; NaN for non-finite values. `stats` (from `robust_stats`) default to the rows' own.
    Returns (z, series median on the original scale)."""
    stats = robust_stats(rows) if stats is None else stats
    groups = rows[SERIES_ID].fillna("").to_numpy()
    median = stats["median"].reindex(groups).to_numpy("float64")
    scale = stats["scale"].reindex(groups).to_numpy("float64")
    z = np.abs(_warp(rows[VALUE]).to_numpy() - median) / scale
    return z, np.sign(median) * np.expm1(np.abs(median))


def value_checks(rows: pd.DataFrame, stats: pd.DataFrame, max_robust_z: float) -> pd.DataFrame:
    """A copy of `rows` with the value checks' columns: finite, and within `max_robust_z` of the series'
    median by `stats` (from `robust_stats`: the rows' own, or a carried series' kept ones)."""
    rows = rows.copy()
    value = rows[VALUE].to_numpy(dtype="float64")
    rows[VALUE_IS_FINITE] = np.isfinite(value) | np.isnan(value)  # NaN is the not-null check's to report
    rows[ROBUST_Z], rows[SERIES_MEDIAN] = robust_z(rows, stats)
    rows[VALUE_IS_PLAUSIBLE] = ~(rows[ROBUST_Z] > max_robust_z)  # NaN (non-finite, missing) is reported elsewhere
    return rows


def staleness_limit(max_staleness: int | None, freq: str | None) -> int:
    """The periods a series may lag the as-of: `max_staleness` where set, else the frequency's default."""
    if max_staleness is not None:
        return max_staleness
    return defaults_for(freq).max_staleness if freq is not None else FrequencyDefaults.max_staleness


def derive_checks(rows: pd.DataFrame, as_of: pd.Timestamp, max_staleness: int | None,
                  max_robust_z: float = 50.0, panel_frequency: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add the suite's derived boolean columns; returns (rows, facts) with per-series frequencies.

    `panel_frequency` is the panel's frequency when known (an incremental run checks only some series);
    by default the most common series frequency. `max_staleness` None: the panel frequency's default.
    """
    stats = robust_stats(rows)
    rows = value_checks(rows, stats, max_robust_z)
    timed = rows[rows[TIMESTAMP].notna() & rows[SERIES_ID].notna()]
    # None (not NaN) where a series has too few timestamps to infer a frequency.
    frequencies = timed.groupby(SERIES_ID)[TIMESTAMP].agg(infer_frequency).astype(object)
    frequencies = frequencies.where(frequencies.notna(), None)
    known = frequencies.dropna()
    if panel_frequency is None:
        panel_frequency = known.value_counts().index[0] if not known.empty else None
    max_staleness = staleness_limit(max_staleness, panel_frequency)
    rows[FREQUENCY_MATCHES_PANEL] = True
    rows[FREQUENCY_IS_STEADY] = True
    rows[ON_FREQUENCY_GRID] = True
    changes: dict[str, tuple[pd.Timestamp, str]] = {}
    rows[SERIES_IS_FRESH] = True
    groups = timed.groupby(SERIES_ID).groups
    checked = []  # series of the panel's frequency: the grid and freshness rules apply
    for series, group in groups.items():
        freq = frequencies.get(series)
        if freq is None or freq != panel_frequency:
            rows.loc[group, FREQUENCY_MATCHES_PANEL] = False
            continue
        change = frequency_change(rows.loc[group, TIMESTAMP], freq)
        if change is not None:
            changes[series] = change
            rows.loc[group, FREQUENCY_IS_STEADY] = False
        rows.loc[group, ON_FREQUENCY_GRID] = on_grid(rows.loc[group, TIMESTAMP], freq)
        checked.append(series)
    last_seen = timed.groupby(SERIES_ID)[TIMESTAMP].max()
    last_seen.update(last_usable(rows))  # a series with no usable row has every row quarantined anyway
    stale_periods: dict[str, int] = {}
    for series in checked:
        lag = periods_between(last_seen[series], as_of, panel_frequency)
        if lag > max_staleness:
            stale_periods[series] = lag
            rows.loc[groups[series], SERIES_IS_FRESH] = False
    facts = {"panel_frequency": panel_frequency, "frequencies": frequencies.to_dict(),
             "last_seen": last_seen.to_dict(), "stale_periods": stale_periods, "max_robust_z": max_robust_z,
             "frequency_changes": changes, "robust": stats, "max_staleness": max_staleness}
    return rows, facts


def last_usable(rows: pd.DataFrame) -> pd.Series:
    """Per series, the newest timestamp of a row the row checks keep (a value present, finite and plausible,
    on the series' grid). A series is as fresh as that row: rows the checks quarantine do not count, or a
    series whose latest months are all missing or all shifted by a time zone would be forecast through them."""
    usable = rows[TIMESTAMP].notna() & rows[VALUE].notna() & rows[VALUE_IS_FINITE] & rows[VALUE_IS_PLAUSIBLE] \
        & rows[ON_FREQUENCY_GRID]
    return rows[usable].groupby(SERIES_ID)[TIMESTAMP].max()


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
            where = _place(row[SOURCE_FILE], row[SOURCE_ROW], file_names)
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
        freq = facts["frequencies"].get(series)
        text = f"timestamp {row[TIMESTAMP].isoformat()} is off the {freq} grid of series {series!r}"
        step, stamp = fixed_step(freq), row[TIMESTAMP]
        if (step is None or step >= pd.Timedelta(days=1)) and stamp != stamp.normalize():
            # The usual cause: a date written as a local midnight with an offset, in a file of that one date.
            text += " (a date with a time zone offset? write dates without a time or offset)"
        return text
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
        return (f"series {series!r} is stale: last valid observation {facts['last_seen'][series].isoformat()} is "
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


def validate(store: pd.DataFrame, as_of: pd.Timestamp | None, max_staleness: int | None,
             file_names: dict[str, str] | None = None, max_robust_z: float = 50.0,
             now: pd.Timestamp | None = None) -> ValidationResult:
    """Validate the store's rows up to the as-of; returns valid rows and quarantine records with reasons.
    `now`: the run's clock, for the future rule (prepare_batch); None: no such rule (backtests)."""
    if store.empty:
        raise PipelineError("the series store is empty: no input file has been ingested successfully "
                            "(see the ingest warnings and <data-dir>/quarantine/ingest/)")
    batch = prepare_batch(store, as_of, now)
    rows, facts = derive_checks(batch.rows, batch.as_of, max_staleness, max_robust_z)
    return _finish(rows, facts, batch, file_names)


def _finish(rows: pd.DataFrame, facts: dict[str, Any], batch: Batch,
            file_names: dict[str, str] | None) -> ValidationResult:
    """Run the suite on rows with their derived columns; split them into valid rows and quarantine."""
    rows = rows.reset_index(drop=True)
    outcomes = run_suite(rows)
    reasons = explain(rows, outcomes, facts, batch.as_of, facts["max_staleness"], file_names or {})
    failing = np.zeros(len(rows), dtype=bool)
    failing[reasons.index.to_numpy(dtype=int)] = True
    bad_rows = rows[failing]
    quarantined = quarantine_records(bad_rows, stage="validate", reason=reasons.sort_index().to_numpy())
    if batch.future is not None:
        quarantined = pd.concat([quarantined, _future_records(batch.future, batch.now, file_names or {})],
                                ignore_index=True)
    covariates = [c for c in rows.columns if c not in (*REQUIRED, *CHECK_COLUMNS, *HELPER_COLUMNS, SOURCE_FILE,
                                                      SOURCE_ROW, RAW_TIMESTAMP, RAW_VALUE, INGEST_SEQ)]
    covariates = [c for c in covariates if rows[c].notna().any()]
    valid = rows.loc[~failing, [SERIES_ID, TIMESTAMP, VALUE, *covariates]]
    valid = valid.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    return ValidationResult(valid=valid, quarantined=quarantined, outcomes=outcomes, facts=facts, batch=batch,
                            covariates=covariates)


def _future_records(rows: pd.DataFrame, now: pd.Timestamp, file_names: dict[str, str]) -> pd.DataFrame:
    """Quarantine records for rows dated after the run's clock (Batch.future)."""
    reasons = [f"{_place(source, row, file_names)}: timestamp {stamp.isoformat()} of series {series!r} is in the "
               f"future, over a day after this run's clock ({now.isoformat(timespec='minutes')}); it cannot have "
               "been observed yet (check the source's clock and time zone)"
               for series, stamp, source, row in rows[[SERIES_ID, TIMESTAMP, SOURCE_FILE, SOURCE_ROW]].itertuples(
                   index=False)]
    return quarantine_records(rows, stage="validate", reason=pd.Series(reasons, index=rows.index, dtype="string"))


def _place(source_file: str, source_row: Any, file_names: dict[str, str]) -> str:
    """Where a row came from, as the reasons name it: `<file name> row <n>`."""
    return f"{file_names.get(source_file, source_file)} row {source_row}"


def series_state(valid: pd.DataFrame, facts: dict[str, Any]) -> pd.DataFrame:
    """What the next incremental run needs of each valid series: frequency, outlier yardstick, last times."""
    ids = pd.Index(valid[SERIES_ID].unique(), name=SERIES_ID)
    robust = facts["robust"].reindex(ids)
    last_valid = valid.groupby(SERIES_ID)[TIMESTAMP].max().reindex(ids)
    last_seen = pd.Series(facts["last_seen"], dtype=object).reindex(ids)
    return pd.DataFrame({"frequency": pd.Series(facts["frequencies"], dtype=object).reindex(ids).astype("string"),
                         "median": robust["median"].to_numpy("float64"), "scale": robust["scale"].to_numpy("float64"),
                         "last_seen": pd.to_datetime(last_seen.to_numpy(), utc=True),
                         "last_valid": last_valid.to_numpy()}, index=ids)


@dataclass
class Increment:
    """How an incremental run splits the store: rows to check, and which series are rebuilt in full."""

    rows: pd.DataFrame  # every row of the rebuilt series + the new rows of the carried series
    carried: pd.Index  # series checked on their new rows only
    rebuilt: list[str]
    reasons: dict[str, int]  # why series were rebuilt: counts per cause


def split_increment(store: pd.DataFrame, base: Any, base_valid: pd.DataFrame, as_of: pd.Timestamp,
                    max_staleness: int | None, history: Callable[[list[str]], pd.DataFrame] | None = None) -> Increment:
    """Pick the rows an incremental run must check (see stores/snapshots.py). `store` holds at least every
    row new since the base; `history(ids)` returns every stored row of those series (default: from `store`)."""
    stamps = store[TIMESTAMP]
    new = (store[INGEST_SEQ] > base.max_seq) | (stamps > base.as_of).fillna(False).astype(bool)
    delta = store[new]
    ids = delta[SERIES_ID]
    known = base.series.index
    late = delta[TIMESTAMP].notna() & (delta[TIMESTAMP] <= base.as_of)
    unknown_ids = set(ids[ids.notna() & ~ids.isin(known)].astype(str))
    late_ids = set(ids[ids.notna() & late & ids.isin(known)].astype(str))
    candidates = known.difference(pd.Index(sorted(unknown_ids | late_ids), dtype=object))
    # Whole-series rules for carried series, on their last timestamps (no full history needed).
    current = delta[ids.isin(candidates) & (delta[TIMESTAMP] <= as_of).fillna(False).astype(bool)]
    state = base.series.loc[candidates]
    # As in derive_checks, a series is as fresh as its last usable row; here (before the row checks) rows
    # with a value, so new rows that are all missing or non-finite do not keep a series fresh.
    valued = current[np.isfinite(current[VALUE].to_numpy("float64"))]
    newest = valued.groupby(SERIES_ID)[TIMESTAMP].max().reindex(candidates)
    last_seen = newest.where(newest.notna(), pd.to_datetime(state["last_seen"], utc=True))
    limit = staleness_limit(max_staleness, base.panel_frequency)
    stale = candidates[periods_since(last_seen, as_of, base.panel_frequency) > limit]
    changed = _frequency_changed(current, base_valid, state, base.panel_frequency)
    rebuilt = sorted(unknown_ids | late_ids | set(stale) | changed)
    carried = known.difference(pd.Index(rebuilt, dtype=object))
    if history is None:
        whole = store[in_series(store, rebuilt)]
    else:
        whole = history(rebuilt) if rebuilt else store.iloc[0:0]
    rows = pd.concat([whole, delta[ids.isin(carried) | ids.isna()]])
    rows = rows.sort_values(INGEST_SEQ, kind="stable")  # store order: prepare_batch lets later files win
    return Increment(rows=rows, carried=carried, rebuilt=rebuilt,
                     reasons={"new or previously quarantined": len(unknown_ids), "late or restated rows": len(late_ids),
                              "stale": len(stale), "frequency changed": len(changed)})


def _frequency_changed(current: pd.DataFrame, base_valid: pd.DataFrame, state: pd.DataFrame, freq: str) -> set[str]:
    """Carried series whose new timestamps end in a run of a different spacing (frequency_change)."""
    step = fixed_step(freq)
    current = current.dropna(subset=[TIMESTAMP]).sort_values([SERIES_ID, TIMESTAMP], kind="stable")
    if step is None or current.empty:
        return set()
    previous = current.groupby(SERIES_ID)[TIMESTAMP].shift()
    last = current.groupby(SERIES_ID).tail(1).index
    ids = current.loc[last, SERIES_ID]
    previous = previous.loc[last].where(previous.loc[last].notna(),
                                        state["last_valid"].reindex(ids).to_numpy())
    # Fast path: a series whose last spacing is the regular step cannot have changed frequency.
    suspects = ids[(current.loc[last, TIMESTAMP] - previous) != step]
    changed = set()
    if len(suspects) == 0:
        return changed
    tails = tail_rows(base_valid, suspects, 16)
    for series in suspects:
        stamps = pd.concat([tails.loc[tails[SERIES_ID] == series, TIMESTAMP],
                            current.loc[current[SERIES_ID] == series, TIMESTAMP]])
        if frequency_change(stamps, freq) is not None:
            changed.add(str(series))
    return changed


def derive_carried_checks(rows: pd.DataFrame, state: pd.DataFrame, max_robust_z: float) -> pd.DataFrame:
    """The suite's derived columns for new rows of carried series, judged against their series' state
    (frequency, robust median and spread of the cycle's full run, last valid timestamp as grid anchor)."""
    rows = value_checks(rows, state[["median", "scale"]], max_robust_z)
    rows[FREQUENCY_MATCHES_PANEL] = True  # carried series have the panel's frequency
    rows[FREQUENCY_IS_STEADY] = True  # split_increment rebuilt any series that changed
    rows[SERIES_IS_FRESH] = True  # split_increment rebuilt any stale series
    grid = np.ones(len(rows), dtype=bool)
    timed = rows[TIMESTAMP].notna().to_numpy()
    for freq, positions in pd.Series(np.flatnonzero(timed)).groupby(
            state["frequency"].reindex(rows[SERIES_ID]).to_numpy()[timed]):
        part = rows.iloc[positions.to_numpy()]
        anchors = state["last_valid"].reindex(part[SERIES_ID])
        grid[positions.to_numpy()] = on_grid_from(part[TIMESTAMP], anchors, str(freq))
    rows[ON_FREQUENCY_GRID] = grid
    return rows


def validate_incremental(store: pd.DataFrame, base: Any, base_valid: pd.DataFrame, as_of: pd.Timestamp,
                         max_staleness: int | None, file_names: dict[str, str] | None = None,
                         max_robust_z: float = 50.0, history: Callable[[list[str]], pd.DataFrame] | None = None,
                         now: pd.Timestamp | None = None) -> tuple[ValidationResult, Increment, pd.DataFrame]:
    """Validate only what is new since `base`: the new rows of carried series (against their kept state)
    and every row of rebuilt series (the full checks). Returns the result (its `valid` is the complete
    snapshot: the base's valid rows plus the new ones), the split, and the next per-series state."""
    increment = split_increment(store, base, base_valid, as_of, max_staleness, history)
    batch = prepare_batch(increment.rows, as_of, now)
    carried_rows = batch.rows[SERIES_ID].isin(increment.carried).to_numpy()
    full_part, facts = derive_checks(batch.rows[~carried_rows], batch.as_of, max_staleness, max_robust_z,
                                     panel_frequency=base.panel_frequency)
    carried_part = derive_carried_checks(batch.rows[carried_rows], base.series, max_robust_z)
    rows = pd.concat([full_part, carried_part]).sort_index()
    state = base.series.loc[increment.carried]
    facts["frequencies"] = {**state["frequency"].astype(object).to_dict(), **facts["frequencies"]}
    newest = last_usable(carried_part)
    facts["last_seen"] = {**state["last_seen"].to_dict(), **newest.to_dict(), **facts["last_seen"]}
    facts["robust"] = pd.concat([state[["median", "scale"]], facts["robust"]])
    result = _finish(rows, facts, batch, file_names)
    kept = base_valid[~in_series(base_valid, increment.rebuilt)] if increment.rebuilt else base_valid
    result.valid = append_rows(kept, result.valid)
    result.covariates = [c for c in result.valid.columns if c not in (SERIES_ID, TIMESTAMP, VALUE)]
    return result, increment, series_state(result.valid, facts)


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


