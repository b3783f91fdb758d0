"""Row helpers over long-format frames sorted by series and time: blocks, last timestamps, membership,
new rows, tails, merges. Incremental stages use them so their cost follows the new rows, not the history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import SERIES_ID, TIMESTAMP


def series_blocks(frame: pd.DataFrame) -> tuple[np.ndarray, pd.Index, np.ndarray]:
    """(row codes, series ids in row order, end row of each series) of a frame sorted by series."""
    codes, uniques = pd.factorize(frame[SERIES_ID])
    return codes, pd.Index(uniques, dtype=object), np.cumsum(np.bincount(codes, minlength=len(uniques)))


def last_per_series(frame: pd.DataFrame) -> pd.Series:
    """Each series' last timestamp (series id -> timestamp) of a frame sorted by series and time."""
    _, ids, ends = series_blocks(frame)
    return pd.Series(frame[TIMESTAMP].array.take(ends - 1), index=ids)


def in_series(frame: pd.DataFrame, ids: Any) -> np.ndarray:
    """Rows of `frame` whose series is one of `ids` (membership tested once per series, not per row)."""
    codes, uniques = pd.factorize(frame[SERIES_ID])
    member = np.append(pd.Index(uniques, dtype=object).isin(pd.Index(list(ids), dtype=object)), False)
    return member[codes]  # code -1 (missing id) picks the appended False


def newer_rows(frame: pd.DataFrame, last: pd.Series) -> np.ndarray:
    """True for rows of `frame` later than their series' entry in `last` (series id -> timestamp); False
    for series without one."""
    codes, uniques = pd.factorize(frame[SERIES_ID])
    limits = last.reindex(pd.Index(uniques, dtype=object)).array.take(codes, allow_fill=True)
    return np.asarray(frame[TIMESTAMP].array > limits, dtype=bool)


def tail_rows(frame: pd.DataFrame, ids: Any, count: int) -> pd.DataFrame:
    """The last `count` rows of each of the series `ids` in a frame sorted by series and time."""
    _, uniques, ends = series_blocks(frame)
    chosen = uniques.isin(pd.Index(list(ids), dtype=object))
    starts = np.concatenate([[0], ends[:-1]])[chosen]
    ends = ends[chosen]
    starts = np.maximum(starts, ends - count)
    lengths = ends - starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return frame.iloc[np.repeat(starts, lengths) + offsets]


def append_rows(base: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """`base` (sorted by series and time) with `extra` rows merged in, sorted the same way, without
    sorting `base` again. Every extra row must be later than all base rows of its series (new rows of a
    carried series, or rows of a series `base` lacks)."""
    if extra.empty:
        return base.reset_index(drop=True)
    extra = extra.sort_values([SERIES_ID, TIMESTAMP], kind="stable")
    _, ids, ends = series_blocks(base)
    before = np.searchsorted(ids.to_numpy(), extra[SERIES_ID].to_numpy(dtype=object), side="right")
    positions = np.where(before > 0, ends[np.maximum(before - 1, 0)] if len(ends) else 0, 0)
    order = np.insert(np.arange(len(base)), positions, len(base) + np.arange(len(extra)))
    merged = pd.concat([base, extra], ignore_index=True)
    return merged.take(order).reset_index(drop=True)
