"""Keras input pipeline that cuts windows out of the shared series arrays batch by batch.

Each batch is one fancy-indexing gather (`features[starts[:, None] + offsets]`), so training never holds
more than the series and one batch in memory, and measured no slower than `model.fit` on fully
materialised numpy arrays (benchmarks/training_input.py).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from tasks.windows import WindowSource


class WindowDataset(keras.utils.PyDataset):
    """Batches (inputs [batch, lookback, features], targets [batch, horizon]) of one split of a WindowSource.

    With `shuffle`, the windows are put in one seeded random order that every epoch follows. Reshuffling
    per epoch is not safe here: Keras starts the next epoch's prefetching reads before it calls
    `on_epoch_end`, so per-epoch state races with the reads and training stops being reproducible.
    `max_windows` keeps a seeded random sample of that many windows (the head of that order), which
    bounds the cost of an epoch however many series there are. `priority` (a boolean mask over the split's
    windows) puts those windows in the sample first: a warm start trains on every window its champion
    has not seen, topped up with a sample of the ones it has. Without `shuffle`, `max_windows` keeps a
    seeded sample of that many windows in their original order (the validation windows of an epoch).
    """

    def __init__(self, source: WindowSource, split: str, batch_size: int, shuffle: bool, seed: int = 0,
                 max_windows: int | None = None, priority: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source, self.starts, self.batch_size = source, source.starts[split], batch_size
        count = len(self.starts)
        rng = np.random.default_rng(seed)
        order = rng.permutation(count) if shuffle else np.arange(count)
        if shuffle and priority is not None:
            order = order[np.argsort(~np.asarray(priority, dtype=bool)[order], kind="stable")]
            order = rng.permutation(order[:max_windows]) if max_windows else order
        if not shuffle and max_windows and count > max_windows:  # a fixed sample, kept in order
            order = np.sort(rng.choice(count, max_windows, replace=False))
        self.order = order[:max_windows] if (shuffle and max_windows) else order
        self.per_pass = len(self.order)

    def __len__(self) -> int:
        return math.ceil(self.per_pass / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.source.window(self.starts[batch])
