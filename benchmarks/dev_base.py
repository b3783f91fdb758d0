"""The seasonal base alone (the forecast the network corrects, no network) on the development panel's cuts.

At each of the 3 rolling origins of every run, the run's history is validated, gap-filled and windowed as
the backtest does it; the model's own SeasonalBase layer then forecasts each series from its last window,
and the forecast is scored like the backtest's (MASE, seasonal-naive scale). No training: a full panel
takes about a minute, so a change to the base can be measured before a 13-minute model backtest.

    .venv/bin/python benchmarks/dev_base.py [--datasets m4_hourly taylor_30min] [--window-profile] [--gaps 7]

`--window-profile`: the base's profile from the window's own periods (the base before the profile
channel) instead of the `base_profile` channel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import devpanel  # noqa: E402
from dev_backtest import validated  # noqa: E402


def base_scores(dataset, settings, window_profile: bool, gaps: int | None = None) -> list[float]:
    from forecasting.backtest import _score, rolling_origins
    from forecasting.columns import SERIES_ID, TIMESTAMP
    from forecasting.forecast import _rows
    from forecasting.frequency import defaults_for
    from forecasting.gapfill import gapfill
    from forecasting.model.config import ModelConfig
    from forecasting.model.network import SeasonalBase
    from forecasting.windows import longest_length, plan_windows, resolve_sizes

    scores = []
    for run, rows in devpanel.runs(dataset):
        if gaps is not None:
            rows = devpanel.with_gaps(rows, seed=gaps)
        valid, freq = validated(rows, run, settings)
        _, horizon = resolve_sizes(freq, settings.lookback, settings.horizon)
        season = defaults_for(freq).season
        for cut in rolling_origins(valid[TIMESTAMP].max(), freq, horizon, 3):
            clean = gapfill(valid[valid[TIMESTAMP] <= cut], freq, settings.fill_method, settings.max_gap).clean
            lookback, _ = resolve_sizes(freq, settings.lookback, horizon, longest_length(clean))
            plan = plan_windows(clean, freq, lookback, horizon, settings.val_fraction, settings.target_transform)
            config = ModelConfig.from_settings(settings, lookback=lookback, horizon=horizon,
                                               features=plan.features, frequency=freq)
            layer = SeasonalBase(horizon, config.season, config.level_window, config.long_season,
                                 config.smoothing_channels(), None if window_profile else config.profile_channel())
            windows = plan.series.groupby(SERIES_ID, sort=True).tail(lookback)
            ids = windows[SERIES_ID].to_numpy()[::lookback]
            x = windows[plan.features].to_numpy("float32").reshape(len(ids), lookback, -1)
            point = plan.scalers.target.unscale(ids, np.asarray(layer(x)))
            origins = windows[TIMESTAMP].to_numpy()[lookback - 1::lookback]
            # Scored as the backtest scores a publication (observed points only, seasonal-naive scale).
            published = _rows(ids, origins, point, point, point, freq, "seasonal-base")
            scored = _score(published, valid[valid[TIMESTAMP] > cut], clean, cut, season)
            scores += scored["mase"].tolist() if len(scored) else []  # none: an outage covers the test horizon
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", help="default: all")
    parser.add_argument("--window-profile", action="store_true", help="the profile from the window's own periods")
    parser.add_argument("--gaps", type=int, metavar="SEED", help="knock seeded outages and single rows out of "
                        "each series first (devpanel.with_gaps), as dev_backtest.py --gaps does")
    args = parser.parse_args()
    from forecasting.settings import Settings

    with tempfile.TemporaryDirectory() as store:
        settings = Settings(data_dir=store)
        means = {}
        for dataset in devpanel.by_name(args.datasets):
            scores = base_scores(dataset, settings, args.window_profile, args.gaps)
            means[dataset.name] = float(np.nanmean(scores))
            print(f"{dataset.name:<16} base MASE {means[dataset.name]:.3f}  ({len(scores)} series x origins)", flush=True)
    print(f"{'mean':<16} base MASE {np.mean(list(means.values())):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
