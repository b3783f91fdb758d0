"""Explanations of a model version, measured on its own validation windows: which inputs and which past
it leans on. Model-agnostic (forward passes only), so they work on every Keras backend.

- Channel importance (permutation): each input group (the target's own history, the calendar encodings,
  each covariate, the seasonal base's per-series statistics) is shuffled across the sampled windows,
  keeping each window's time order; the importance is how much the loss worsens: pinball on the scaled
  target (what training minimises) and MASE on the original scale (what promotion scores), overall and
  per horizon step. A group the model does not use scores about zero; a negative value is noise (or a
  group that hurts). Averaged over `repeats` shuffles, their spread reported.
- Lookback importance (occlusion): each block of the lookback (the most recent step, the rest of the
  latest season, each older season) has its data channels (target and covariates) replaced by the
  window's own lookback mean; the importance is the MASE increase per horizon step.

Imputed targets are never scored (gap-fill invented them). The sample is seeded and bounded: the same
model, windows and seed give the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import IMPUTED, SERIES_ID, VALUE
from forecasting.features import calendar_columns
from forecasting.frequency import defaults_for
from forecasting.metrics import mase_scale
from forecasting.model.training import predict_quantiles
from forecasting.scaling import Scalers
from forecasting.smoothing import CHANNELS as SMOOTHING_CHANNELS
from forecasting.smoothing import PROFILE
from forecasting.windows import SCALED, SPLIT, START, VALIDATION, materialize

TARGET, CALENDAR, STATISTICS = "target history", "calendar", "series statistics"
PROFILE_GROUP = "seasonal profile"  # the base's profile channel: the series' phase averages before the window
COVARIATE_SUFFIX = "_scaled"
OLDER_SEASONS = 2  # seasons before the latest shown one by one; anything older is one block


@dataclass
class Importance:
    name: str
    pinball: float  # increase in mean pinball loss (scaled target); about zero: not used
    mase: float  # increase in MASE (original scale)
    mase_spread: float  # standard deviation of the MASE increase over the repeats
    mase_by_step: list[float] = field(default_factory=list)  # increase per horizon step


@dataclass
class Explanation:
    version: str | None
    windows: int  # validation windows sampled
    seed: int
    repeats: int  # shuffles per channel group
    baseline: dict[str, float]  # the unperturbed model's pinball and MASE on the sample
    channels: list[Importance]
    lookback_blocks: list[dict[str, Any]]  # name, positions (steps back from the origin), mase_by_step
    horizon: int
    seconds: float
    shap: str  # why SHAP values are not included

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def input_groups(features: list[str], freq: str) -> dict[str, list[int]]:
    """Feature positions per explained group, in the model's channel order."""
    calendar, statistics = set(calendar_columns(freq)), set(SMOOTHING_CHANNELS)
    groups: dict[str, list[int]] = {}
    for position, name in enumerate(features):
        if name == SCALED:
            group = TARGET
        elif name in calendar:
            group = CALENDAR
        elif name in statistics:
            group = STATISTICS
        elif name == PROFILE:
            group = PROFILE_GROUP
        elif name.endswith(COVARIATE_SUFFIX):
            group = f"covariate {name[:-len(COVARIATE_SUFFIX)]}"
        else:
            group = name
        groups.setdefault(group, []).append(position)
    return groups


def lookback_blocks(lookback: int, season: int) -> list[tuple[str, int, int]]:
    """(name, first, stop) positions in the lookback (position lookback-1 is the step before the origin):
    the most recent step, the rest of the latest season, each of the next `OLDER_SEASONS` seasons, older."""
    blocks = [("most recent step", lookback - 1, lookback)]
    stop = lookback - 1
    if season > 1 and stop > 0:
        first = max(0, lookback - season)
        if first < stop:
            blocks.append(("rest of the latest season", first, stop))
        stop = first
        for back in range(2, 2 + OLDER_SEASONS):
            if stop <= 0:
                break
            first = max(0, stop - season)
            blocks.append((f"season {back} back", first, stop))
            stop = first
    if stop > 0:
        blocks.append(("older", 0, stop))
    return blocks


def sample_windows(series: pd.DataFrame, index: pd.DataFrame, lookback: int, horizon: int, size: int,
                   seed: int) -> np.ndarray:
    """A seeded sample of validation windows with at least one observed target, sorted."""
    starts = index.loc[index[SPLIT] == VALIDATION, START].to_numpy("int64")
    if IMPUTED in series.columns and len(starts):
        observed = ~series[IMPUTED].to_numpy(dtype=bool)
        view = np.lib.stride_tricks.sliding_window_view(observed, horizon)
        starts = starts[view[starts + lookback].any(axis=1)]
    if len(starts) > size:
        starts = np.random.default_rng(seed).choice(starts, size=size, replace=False)
    return np.sort(starts)


class _Scorer:
    """The losses of perturbed inputs on one sample of windows."""

    def __init__(self, model: Any, correction: Any, scalers: Scalers, series: pd.DataFrame, starts: np.ndarray,
                 features: list[str], lookback: int, horizon: int, quantiles: tuple[float, ...], season: int):
        self.model, self.correction, self.scalers = model, correction, scalers
        self.quantiles = np.asarray(quantiles, dtype="float64")
        self.x, self.y = materialize(series[features].to_numpy("float32"), series[SCALED].to_numpy("float32"),
                                     starts, lookback, horizon)
        values = series[VALUE].to_numpy("float64")
        self.ids = series[SERIES_ID].to_numpy()[starts]
        observed = ~series[IMPUTED].to_numpy(dtype=bool) if IMPUTED in series.columns \
            else np.ones(len(values), bool)
        origins = starts + lookback
        self.actual = np.stack([values[o:o + horizon] for o in origins])
        firsts = pd.Series(np.arange(len(series))).groupby(series[SERIES_ID].to_numpy()).transform("min").to_numpy()
        scales = np.array([mase_scale(values[firsts[s]:s + lookback], season) for s in starts])
        self.scales = np.where(np.isfinite(scales) & (scales > 0), scales, np.nan)
        self.mask = np.stack([observed[o:o + horizon] for o in origins]) & np.isfinite(self.scales)[:, None]

    def losses(self, inputs: list[np.ndarray]) -> list[tuple[float, np.ndarray]]:
        """Per input variant: (mean pinball on the scaled target, [horizon] mean scaled absolute error) over
        observed targets. All variants go through the network as one batch: an eager recurrent pass costs
        per time step more than per window, so one pass of many windows beats many passes of few."""
        predicted = predict_quantiles(self.model, np.concatenate(inputs), self.correction, batch_size=16384)
        out = []
        for part in np.split(predicted, len(inputs)):  # [n, horizon, 3] scaled, one per variant
            error = self.y[..., None] - part
            pinball = np.maximum(self.quantiles * error, (self.quantiles - 1) * error).mean(axis=-1)
            median = self.scalers.target.unscale(self.ids, part[..., 1])
            scaled = np.where(self.mask, np.abs(self.actual - median) / self.scales[:, None], np.nan)
            with np.errstate(invalid="ignore"):
                out.append((float(pinball[self.mask].mean()), np.nanmean(scaled, axis=0)))
        return out


def explain(model: Any, correction: Any, scalers: Scalers, series: pd.DataFrame, index: pd.DataFrame,
            features: list[str], lookback: int, horizon: int, quantiles: tuple[float, ...], freq: str, *,
            version: str | None = None, windows: int = 512, repeats: int = 3, seed: int = 0) -> Explanation | None:
    """Channel and lookback importance of a model on a seeded sample of at most `windows` of its validation
    windows (features already in `series`); None when no validation window has an observed target on a
    series that varies (a constant history gives MASE no scale)."""
    started = time.perf_counter()
    starts = sample_windows(series, index, lookback, horizon, windows, seed)
    if len(starts) == 0:
        return None
    season = defaults_for(freq).season
    scorer = _Scorer(model, correction, scalers, series, starts, features, lookback, horizon, quantiles, season)
    if not scorer.mask.any():  # every sampled series is constant: MASE has no scale, nothing can be scored
        return None
    rng = np.random.default_rng(seed)
    groups = input_groups(features, freq)
    variants = [scorer.x]  # unperturbed first, then each group shuffled `repeats` times, then each block hidden
    for positions in groups.values():
        for _ in range(repeats):
            x = scorer.x.copy()
            x[:, :, positions] = scorer.x[rng.permutation(len(starts))][:, :, positions]
            variants.append(x)
    data = [p for name, ps in groups.items() if name == TARGET or name.startswith("covariate") for p in ps]
    means = scorer.x[:, :, data].mean(axis=1, keepdims=True)  # each window's own lookback mean per channel
    blocks = lookback_blocks(lookback, season)
    for _, first, stop in blocks:
        x = scorer.x.copy()
        occluded = x[:, first:stop, :]
        occluded[:, :, data] = np.broadcast_to(means, (len(starts), stop - first, len(data)))
        variants.append(x)
    scored = iter(scorer.losses(variants))
    base_pinball, base_steps = next(scored)
    channels = []
    for name in groups:
        runs = [next(scored) for _ in range(repeats)]
        steps = np.asarray([by_step - base_steps for _, by_step in runs])
        channels.append(Importance(name=name, pinball=_round(np.mean([p - base_pinball for p, _ in runs])),
                                   mase=_round(np.nanmean(steps)),
                                   mase_spread=_round(np.std(np.nanmean(steps, axis=1))),
                                   mase_by_step=[_round(v) for v in np.nanmean(steps, axis=0)]))
    channels.sort(key=lambda item: -item.mase)
    hidden = []
    for name, first, stop in blocks:
        _, by_step = next(scored)
        hidden.append({"name": name, "steps_back": [lookback - stop + 1, lookback - first],
                       "mase_by_step": [_round(v) for v in by_step - base_steps],
                       "mase": _round(np.nanmean(by_step - base_steps))})
    base_mase = float(np.nanmean(base_steps))
    return Explanation(version=version, windows=len(starts), seed=seed, repeats=repeats,
                       baseline={"pinball": _round(base_pinball), "mase": _round(base_mase)}, channels=channels,
                       lookback_blocks=hidden, horizon=horizon, seconds=round(time.perf_counter() - started, 3),
                       shap=shap_note())


def shap_note() -> str:
    """Why SHAP values are not part of the explanation (the permutation and occlusion measures are)."""
    try:
        import shap  # noqa: F401 - optional, never a dependency
    except ImportError:
        return "not computed: the optional shap package is not installed"
    return ("not computed: shap is installed, but its backend-independent KernelExplainer needs thousands of "
            "forward passes per explained window (2 x inputs + 2048 by default), far over a daily run's budget; "
            "the permutation and occlusion measures work on every backend")


def _round(value: float) -> float:
    return float(round(float(value), 6)) if np.isfinite(value) else float("nan")
