"""Training input pipeline: streamed windows (ours) against `model.fit` on materialised numpy arrays.

    .venv/bin/python benchmarks/training_input.py [--windows 40000] [--lookback 28] [--epochs 2]

Same model, same batch size, same windows. The reference materialises every window up front
([windows, lookback, features] float32); ours (forecasting/model/dataset.py) gathers each batch from the shared
series arrays. Prints windows/s, the ratio (target >= 0.9x) and the memory each input needs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from forecasting.model.config import ModelConfig  # noqa: E402
from forecasting.model.devices import seed_everything
from forecasting.windows import TRAIN, VALIDATION, WindowSource  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=40000)
    parser.add_argument("--lookback", type=int, default=28)
    parser.add_argument("--horizon", type=int, default=14)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    from forecasting.model.dataset import WindowDataset

    rows = args.windows + args.lookback + args.horizon
    series = np.random.default_rng(0).normal(size=(rows, args.features)).astype("float32")
    source = WindowSource(series, series[:, 0].copy(), {TRAIN: np.arange(args.windows), VALIDATION: np.arange(0)},
                          args.lookback, args.horizon)
    config = ModelConfig(lookback=args.lookback, horizon=args.horizon, features=tuple(map(str, range(args.features))),
                         quantiles=(0.1, 0.5, 0.9), units=32, layers=2, level_window=7, batch_size=args.batch)
    x, y = source.window(source.starts[TRAIN])
    results = {}
    for name in ("numpy arrays", "streamed (ours)", "numpy arrays ", "streamed (ours) "):  # twice each, interleaved
        seed_everything(0)
        model = config.build()
        if name.startswith("numpy"):
            data, kwargs = (x, y), {"batch_size": args.batch, "shuffle": True}
        else:  # as fit_model feeds it: an endless stream cut into epochs, each ordered by the dataset
            stream = WindowDataset(source, TRAIN, args.batch, shuffle=True)
            data, kwargs = (stream,), {"steps_per_epoch": stream.batches_per_epoch, "shuffle": False}
        started = time.perf_counter()
        model.fit(*data, epochs=args.epochs, verbose=0, **kwargs)
        results.setdefault(name.strip(), []).append(args.windows * args.epochs / (time.perf_counter() - started))
    reference, ours = max(results["numpy arrays"]), max(results["streamed (ours)"])
    print(f"\n{args.windows} windows, lookback {args.lookback}, {args.features} features, batch {args.batch}, "
          f"2 x 32 LSTM, {args.epochs} epochs (best of 2)\n")
    print(f"{'input':<20}{'windows/s':>12}{'input memory':>16}")
    print(f"{'numpy arrays':<20}{reference:>12.0f}{(x.nbytes + y.nbytes) / 1e6:>13.1f} MB")
    print(f"{'streamed (ours)':<20}{ours:>12.0f}{(series.nbytes + source.target.nbytes) / 1e6:>13.1f} MB")
    print(f"\nours / numpy: {ours / reference:.2f}x windows/s (target >= 0.9x)")


if __name__ == "__main__":
    main()
