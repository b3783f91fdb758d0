"""Gap-filling: put each series on its regular grid and fill the holes, marking every fill.

Methods (setting `fill_method`): `ffill`, `bfill`, `linear` (by position), `time` (by timestamp),
`seasonal` (the value one season earlier, e.g. 7 days for daily data; linear where no such value exists),
`seasonal_linear` (the season before the gap, moved by a linear interpolation of the seasonal difference
between the gap's two ends, see `_seasonal_linear_fill`), `model` (the current champion forecasts each gap
from the `lookback` points before it, up to its horizon at a time; linear interpolation where there is no
champion, or too little history before a gap), and `auto` (the default, see `resolve_method`).
A gap longer than `max_gap` periods (default by frequency: 14, two days of sub-daily data) is filled only
when it is short beside the history before it (BRIDGE_SHARE); otherwise inventing that much data would teach
the model made-up patterns, so the series goes on from the first observation after its latest such gap,
and the rows before it are quarantined with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from forecasting.frequency import defaults_for, fixed_step
from forecasting.model.training import predict_quantiles
from forecasting.quarantine import quarantine_records
from forecasting.rows import append_rows, in_series, last_per_series, newer_rows, tail_rows
from forecasting.settings import FillMethod
from forecasting.windows import add_features


FILL_METHODS: tuple[str, ...] = ("auto", "ffill", "bfill", "linear", "time", "seasonal", "seasonal_linear", "model")


def regularize(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Each series reindexed onto its full grid from first to last timestamp; inserted rows have NaN values
    and `imputed=True`. Input: unique long-format rows of one frequency, on each series' grid.

    Fixed-step frequencies build every series' grid at once with array arithmetic and one merge;
    calendar months (no fixed step) go series by series.
    """
    step = fixed_step(freq)
    if frame.empty or step is None:
        return _regularize_by_series(frame, freq)
    frame = frame.sort_values([SERIES_ID, TIMESTAMP], kind="stable")
    bounds = frame.groupby(SERIES_ID, sort=True)[TIMESTAMP].agg(["min", "max"])
    counts = ((bounds["max"] - bounds["min"]) // step + 1).to_numpy("int64")
    offsets = np.arange(counts.sum(), dtype="int64") - np.repeat(np.cumsum(counts) - counts, counts)
    starts = bounds["min"].dt.tz_convert("UTC").dt.tz_convert(None).to_numpy().astype("datetime64[us]")
    stamps = np.repeat(starts, counts) + offsets * step.to_timedelta64().astype("timedelta64[us]")
    grid = pd.DataFrame({
        SERIES_ID: pd.array(np.repeat(bounds.index.to_numpy(dtype=object), counts), dtype="string"),
        TIMESTAMP: pd.DatetimeIndex(stamps).tz_localize("UTC").astype("datetime64[us, UTC]"),
    })
    observed = frame.assign(**{SERIES_ID: frame[SERIES_ID].astype("string"), IMPUTED: False,
                               TIMESTAMP: frame[TIMESTAMP].astype("datetime64[us, UTC]")})
    result = grid.merge(observed, on=[SERIES_ID, TIMESTAMP], how="left", sort=False)
    result[IMPUTED] = result[IMPUTED].isna().to_numpy()
    result[TIMESTAMP] = result[TIMESTAMP].astype("datetime64[us, UTC]")
    return result


def _regularize_by_series(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    parts = []
    for series, group in frame.groupby(SERIES_ID, sort=True):
        grid = pd.date_range(group[TIMESTAMP].iloc[0], group[TIMESTAMP].iloc[-1], freq=freq)
        part = group.set_index(TIMESTAMP).drop(columns=SERIES_ID).reindex(grid)
        part.index.name = TIMESTAMP
        part = part.reset_index()
        part.insert(0, SERIES_ID, series)
        part[IMPUTED] = ~part[TIMESTAMP].isin(group[TIMESTAMP]).to_numpy()
        parts.append(part)
    if not parts:
        return frame.assign(**{IMPUTED: pd.Series(dtype=bool)})
    result = pd.concat(parts, ignore_index=True)
    result[SERIES_ID] = result[SERIES_ID].astype("string")
    result[TIMESTAMP] = result[TIMESTAMP].astype("datetime64[us, UTC]")
    return result


def gap_runs(regular: pd.DataFrame, seen: np.ndarray | None = None) -> pd.DataFrame:
    """Every run of imputed points: series_id, length, gap_start, gap_end (first and last missing stamp),
    in series and time order; with `seen` (a number per row), also each run's first row's `seen`.
    Rows must be sorted by series and time (as `regularize` returns them)."""
    ids = regular[SERIES_ID].to_numpy()
    missing = regular[IMPUTED].to_numpy(dtype=bool)
    new_series = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool)
    run = np.cumsum(~missing | new_series)  # one key per run of missing points (shared with the row before it)
    runs = regular.loc[missing, [SERIES_ID, TIMESTAMP]].assign(run=run[missing])
    extra = {}
    if seen is not None:
        runs["seen"], extra = seen[missing], {"seen": ("seen", "first")}
    return runs.groupby("run", sort=True).agg(**{SERIES_ID: (SERIES_ID, "first"), "length": (TIMESTAMP, "size"),
                                               "gap_start": (TIMESTAMP, "min"), "gap_end": (TIMESTAMP, "max"),
                                               **extra}).reset_index(drop=True)


def longest_gaps(regular: pd.DataFrame) -> pd.DataFrame:
    """Per series: the longest run of imputed points (the first, on ties), with where it starts and ends.
    Rows must be sorted by series and time (as `regularize` returns them)."""
    series = pd.Index(pd.unique(regular[SERIES_ID].to_numpy()), name=SERIES_ID)
    runs = gap_runs(regular).rename(columns={"length": "longest_gap"})
    longest = runs.sort_values([SERIES_ID, "longest_gap"], ascending=[True, False], kind="stable") \
        .drop_duplicates(SERIES_ID).set_index(SERIES_ID)
    result = longest.reindex(series)
    result["longest_gap"] = result["longest_gap"].fillna(0).astype(int)
    for column in ("gap_start", "gap_end"):
        result[column] = pd.to_datetime(result[column], utc=True)
    return result.reset_index()[[SERIES_ID, "longest_gap", "gap_start", "gap_end"]]


# A gap over max_gap is bridged (filled, every point marked) instead of cutting the history when it is at
# most this share of the observed points before it: a two-week outage three years into a series costs
# nothing but two weeks of inputs, while cutting there would leave the model a fraction of its history
# (seattle temperature with seeded outages: 340 days left of 4 years, MASE 0.82 against 0.54 filled).
# Half, not less: bridged points are never targets, so a bridge costs only windows whose inputs cross a
# line, while a cut costs every real target before it. On the development panel with seeded outages (seeds
# 7 and 11; Wikipedia, M4 daily, weekly and monthly), a tenth cut the history at 12 gaps, half at 2, and
# MASE went 0.626 -> 0.623 (a 275-week M4 weekly series' 15-week outage after 68 weeks: 0.351 -> 0.333).
# A gap long beside what precedes it (near a series' start, or after a previous cut) still cuts.
BRIDGE_SHARE = 0.5


def long_gaps(regular: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """Every gap longer than `max_gap` (series_id, length, gap_start, gap_end), with `bridged` (filled: at
    most BRIDGE_SHARE of the observed points since the series' start or its previous cut; otherwise the
    history before it is set aside). Rows must be sorted by series and time."""
    observed = ~regular[IMPUTED].to_numpy(dtype=bool)
    codes = pd.factorize(regular[SERIES_ID])[0]
    seen = pd.Series(observed).groupby(codes).cumsum().to_numpy()  # observed points up to each row
    runs = gap_runs(regular, seen)
    runs = runs[runs["length"] > max_gap].reset_index(drop=True)
    bridged = np.zeros(len(runs), dtype=bool)
    cut_at: dict[str, int] = {}  # per series: observed points before its latest cut
    for row, (series, length, seen_before) in enumerate(runs[[SERIES_ID, "length", "seen"]].itertuples(index=False)):
        bridged[row] = length <= BRIDGE_SHARE * (seen_before - cut_at.get(series, 0))
        if not bridged[row]:
            cut_at[series] = seen_before
    return runs.drop(columns="seen").assign(bridged=bridged)


def last_cuts(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per series, of `long_gaps`' rows: the latest gap that cuts. Its history after that gap is what can
    be used; everything before it is not."""
    return gaps[~gaps["bridged"]].drop_duplicates(SERIES_ID, keep="last").reset_index(drop=True)


def _interpolate(values: pd.Series, codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation inside each series at `positions` (row numbers or times as numbers); before
    a series' first and after its last known value, that value is carried (pandas' limit_direction="both")."""
    known = values.notna().to_numpy()
    at = pd.Series(np.where(known, positions, np.nan))
    left_at, right_at = at.groupby(codes).ffill().to_numpy(), at.groupby(codes).bfill().to_numpy()
    left, right = values.groupby(codes).ffill().to_numpy(), values.groupby(codes).bfill().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        between = left + (right - left) * (positions - left_at) / (right_at - left_at)
    filled = np.where(np.isnan(left), right, np.where(np.isnan(right), left, between))
    return np.where(known, values.to_numpy("float64"), filled)


def resolve_method(method: FillMethod, freq: str) -> FillMethod:
    """The method `auto` stands for: `seasonal_linear` for data finer than a day, `linear` otherwise.

    A sub-daily gap of hours cuts through the daily cycle, which a straight line erases: on the development
    panel's gapped hourly and half-hourly series (outages of a quarter day to a day) the seasonal fill's
    error was half the linear one and less (MAE in one-step-change units 1.27 against 2.64 hourly, 0.30
    against 3.04 half-hourly). Daily and coarser data are the other way round (Wikipedia 1.34 against 0.93,
    M4 weekly 2.21 against 1.60): their neighbours say more about a gap than the same days a week or a
    year earlier, whose noise the seasonal fill copies in. The rule is by frequency, not fitted per series,
    so an incremental run fills a new gap exactly as a full run would."""
    if method != "auto":
        return method
    step = fixed_step(freq)
    return "seasonal_linear" if step is not None and step < pd.Timedelta(days=1) else "linear"


def fill_values(regular: pd.DataFrame, method: FillMethod, season: int, champion: Any = None,
                freq: str | None = None) -> pd.DataFrame:
    """Fill NaN values per series with `method` (`auto` resolved for `freq`); covariates are carried forward
    (then back). Rows must be sorted by series and time. `champion` (a registry ModelVersion) is used by the
    `model` method only.
    """
    if method not in FILL_METHODS:
        raise ValueError(f"fill method {method!r} is not one of {FILL_METHODS}")
    if method == "auto":
        if freq is None:
            raise ValueError("fill method 'auto' needs the data's frequency")
        method = resolve_method(method, freq)
    filled = regular.copy()
    codes = pd.factorize(filled[SERIES_ID])[0]
    values = filled[VALUE].astype("float64")
    if method == "ffill":
        filled[VALUE] = values.groupby(codes).ffill().to_numpy()
    elif method == "bfill":
        filled[VALUE] = values.groupby(codes).bfill().to_numpy()
    elif method in ("linear", "model"):
        filled[VALUE] = _interpolate(values, codes, np.arange(len(values), dtype="float64"))
    elif method == "time":
        stamps = filled[TIMESTAMP].dt.tz_convert(None).to_numpy().astype("datetime64[us]").astype("int64")
        filled[VALUE] = _interpolate(values, codes, stamps.astype("float64"))
    elif method == "seasonal":
        filled[VALUE] = values.groupby(codes).transform(lambda s: _seasonal_fill(s.to_numpy(), season)).to_numpy()
    else:
        filled[VALUE] = values.groupby(codes).transform(
            lambda s: _seasonal_linear_fill(s.to_numpy(), season)).to_numpy()
    covariates = [c for c in filled.columns if c not in (SERIES_ID, TIMESTAMP, VALUE, IMPUTED)]
    for column in covariates:
        filled[column] = filled[column].groupby(codes).ffill().groupby(codes).bfill().to_numpy()
    if method == "model" and champion is not None:
        filled[VALUE] = model_fill(filled, champion, freq)  # over the linear fill, where history allows
    return filled


def model_fill(frame: pd.DataFrame, champion: Any, freq: str) -> np.ndarray:
    """Values with each gap replaced by the champion's median forecasts from the window before it.

    Gaps are filled in rounds, all series at once: each round forecasts up to `horizon` points of every
    gap that has `lookback` points before it, so a long gap is filled horizon by horizon.
    """
    lookback, horizon = champion.config.lookback, champion.config.horizon
    values = frame[VALUE].to_numpy("float64", copy=True)
    imputed = frame[IMPUTED].to_numpy()
    scalers = champion.scalers.extend(frame[~frame[IMPUTED]])
    gaps = []  # [next position to fill, end position (exclusive)] of each gap with enough history
    for positions in frame.groupby(SERIES_ID, sort=False).indices.values():
        first = positions[0]
        missing = imputed[positions]
        starts = np.flatnonzero(missing & ~np.r_[False, missing[:-1]])
        ends = np.flatnonzero(missing & ~np.r_[missing[1:], False]) + 1
        gaps += [[first + a, first + b] for a, b in zip(starts, ends) if a >= lookback]
    while gaps:
        window_rows = np.concatenate([np.arange(start - lookback, start) for start, _ in gaps])
        # Features of whole series (the base's profile channel reads each series from its first row), with
        # the gaps filled so far, then the windows' rows.
        featured = add_features(frame.assign(**{VALUE: values}), scalers, freq)[0].iloc[window_rows]
        x = featured[list(champion.config.features)].to_numpy("float32").reshape(len(gaps), lookback, -1)
        median = predict_quantiles(champion.model, x)[..., 1]  # [gaps, horizon], scaled
        ids = featured[SERIES_ID].to_numpy()[::lookback]
        forecasts = scalers.target.unscale(ids, median)
        for gap, forecast in zip(gaps, forecasts):
            count = min(horizon, gap[1] - gap[0])
            values[gap[0]:gap[0] + count] = forecast[:count]
            gap[0] += count
        gaps = [gap for gap in gaps if gap[0] < gap[1]]
    never_negative = frame.loc[~frame[IMPUTED]].groupby(SERIES_ID)[VALUE].min().reindex(frame[SERIES_ID]).to_numpy() >= 0
    return np.where(never_negative & imputed, np.maximum(values, 0.0), values)


def _seasonal_fill(values: np.ndarray, season: int) -> np.ndarray:
    """Copy the value one season back into each hole (in time order, so long holes chain); linear otherwise."""
    out = values.astype("float64", copy=True)
    for position in np.flatnonzero(np.isnan(out)):
        if position >= season and not np.isnan(out[position - season]):
            out[position] = out[position - season]
    return pd.Series(out).interpolate("linear", limit_direction="both").to_numpy()


def _seasonal_linear_fill(values: np.ndarray, season: int) -> np.ndarray:
    """Fill each hole [start, end) with the season before it, moved to meet both of its ends.

    fill[t] = y[start - season + (t - start) mod season] + d0 + (d1 - d0) * (t - start + 1) / (end - start + 1),
    d0 = y[start - 1] - y[start - 1 - season] and d1 = y[end] - (the repeated season at `end`): the seasonal
    differences at the last point before the hole and the first after it, interpolated linearly across it.
    A pure season plus a straight line is filled exactly where the hole is at most a season long; a longer
    hole repeats the last observed season (not copies of its own fill), the interpolation bridging the
    levels. Holes in time order, so a hole's season may hold an earlier, filled one; linear for a hole
    without a full season before it (near the series' start)."""
    out = values.astype("float64", copy=True)
    linear = pd.Series(out).interpolate("linear", limit_direction="both").to_numpy()
    missing = np.isnan(out)
    starts = np.flatnonzero(missing & ~np.r_[False, missing[:-1]])
    ends = np.flatnonzero(missing & ~np.r_[missing[1:], False]) + 1
    for start, end in zip(starts, ends):
        if season < 1 or start - 1 - season < 0 or end >= len(out):
            out[start:end] = linear[start:end]
            continue
        repeated = out[start - season + np.arange(end - start + 1) % season]  # positions start..end
        before = out[start - 1] - out[start - 1 - season]
        after = out[end] - repeated[-1]
        share = np.arange(1, end - start + 1) / (end - start + 1)
        out[start:end] = repeated[:-1] + before + (after - before) * share
    return out


@dataclass
class GapFillResult:
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    gaps: pd.DataFrame


def fill_limit(max_gap: int | None, freq: str) -> int:
    """The longest gap gap-fill fills: `max_gap` when set, else the frequency's default."""
    return defaults_for(freq).max_gap if max_gap is None else max_gap


def gapfill(valid: pd.DataFrame, freq: str, method: FillMethod, max_gap: int | None,
            champion: Any = None) -> GapFillResult:
    """Regularise, set aside the history before a gap longer than `max_gap` periods (None: the frequency's
    default, see fill_limit) unless the gap is short beside the history before it, fill the rest.

    A gap too long to fill does not cost a series its forecast: the series goes on from the first
    observed point after its latest such gap, and its observed rows before that gap go to quarantine with
    the reason (nothing is lost). Inventing that much data would teach the model made-up patterns, and
    history older than a break says less about the series' future than the history after it. A long gap
    at most BRIDGE_SHARE of the observed points before it is filled instead (bridged): it is a small share
    of what the model learns from, its points are never targets, and cutting would cost most of the history.
    """
    regular = regularize(valid, freq)
    max_gap = fill_limit(max_gap, freq)
    breaks = last_cuts(long_gaps(regular, max_gap))
    resumes = pd.Series(breaks["gap_end"].to_numpy(), index=breaks[SERIES_ID].astype(str).to_numpy())
    before_break = _before(regular, resumes)
    kept = regular[~before_break]
    lengths = kept.groupby(SERIES_ID, sort=False).size()
    rejected = valid[_before(valid, resumes)]
    reasons = rejected[SERIES_ID].astype(str).map({
        str(row.series_id): (f"series {row.series_id!r} has a gap of {row.length} periods from "
                             f"{row.gap_start.isoformat()} to {row.gap_end.isoformat()}, over the fill limit of "
                             f"{max_gap} (setting max_gap): its history before the gap is set aside and it is "
                             f"forecast from the {lengths.get(row.series_id, 0)} periods after it")
        for row in breaks.itertuples()})
    quarantined = quarantine_records(rejected, stage="gapfill", reason=reasons.to_numpy())
    clean = fill_values(kept.reset_index(drop=True), method, season=defaults_for(freq).season, champion=champion,
                        freq=freq)
    return GapFillResult(clean=clean.reset_index(drop=True), quarantined=quarantined, gaps=longest_gaps(kept))


def bridged_gaps(clean: pd.DataFrame, max_gap: int) -> pd.DataFrame:
    """The gaps over `max_gap` that a clean series holds filled (bridged): series_id, length, gap_start,
    gap_end. Rows sorted by series and time, as gap-fill writes them."""
    runs = gap_runs(clean)
    return runs[runs["length"] > max_gap].reset_index(drop=True)


def _before(frame: pd.DataFrame, resumes: pd.Series) -> np.ndarray:
    """Rows of `frame` at or before their series' entry in `resumes` (a gap's last missing timestamp)."""
    if resumes.empty:
        return np.zeros(len(frame), dtype=bool)
    limit = frame[SERIES_ID].astype(str).map(resumes)
    return (frame[TIMESTAMP] <= limit).fillna(False).to_numpy(dtype=bool)


def context_length(method: FillMethod, freq: str, champion: Any = None) -> int:
    """Filled rows before the new ones that a method needs to fill them as a full run would: the last
    (always observed) point for interpolation and carrying, a season for `seasonal` (and one more point for
    `seasonal_linear`: the seasonal difference before a hole), a lookback for `model`."""
    method = resolve_method(method, freq)
    if method == "seasonal":
        return defaults_for(freq).season
    if method == "seasonal_linear":
        return defaults_for(freq).season + 1
    if method == "model" and champion is not None:
        return champion.config.lookback
    return 1


def gapfill_increment(valid: pd.DataFrame, base_clean: pd.DataFrame, rebuilt: set[str], freq: str,
                      method: FillMethod, max_gap: int | None,
                      champion: Any = None) -> tuple[GapFillResult, list[str], int]:
    """Gap-fill only the rows after each carried series' last clean point, on top of `base_clean` (an
    earlier run's clean series); series not carried (new, rebuilt by validation, or with a new gap over
    `max_gap`) are gap-filled in full from `valid`. Returns the complete clean snapshot, the series
    filled in full and how many clean rows this run produced (the rest are the base's, unchanged)."""
    base_last = last_per_series(base_clean)
    valid_ids = pd.Index(pd.factorize(valid[SERIES_ID])[1], dtype=object)
    carried = valid_ids.intersection(base_last.index).difference(pd.Index(sorted(rebuilt), dtype=object))
    new = valid[newer_rows(valid, base_last.reindex(carried))]  # rows of other series are never "newer"
    growing = pd.unique(new[SERIES_ID])
    context = tail_rows(base_clean, growing, context_length(method, freq, champion))
    frame = pd.concat([context.drop(columns=IMPUTED), new], ignore_index=True)
    regular = regularize(frame, freq)  # context rows count as observed: only the new stretch can have gaps
    is_new = newer_rows(regular, base_last)
    gaps = longest_gaps(regular)
    too_long = set(gaps.loc[gaps["longest_gap"] > fill_limit(max_gap, freq), SERIES_ID].astype(str))
    keep = ~in_series(regular, too_long)
    filled = fill_values(regular[keep].reset_index(drop=True), method, season=defaults_for(freq).season,
                         champion=champion, freq=freq)
    appended = filled[is_new[keep]]
    full_ids = sorted(set(valid_ids.difference(carried).astype(str)) | too_long)
    full = gapfill(valid[in_series(valid, full_ids)].reset_index(drop=True), freq, method, max_gap, champion)
    dropped = set(base_last.index.difference(carried).astype(str)) | too_long
    kept = base_clean[~in_series(base_clean, dropped)] if dropped else base_clean
    clean = append_rows(kept, pd.concat([appended, full.clean], ignore_index=True))
    return GapFillResult(clean=clean, quarantined=full.quarantined, gaps=full.gaps), full_ids, len(clean) - len(kept)
