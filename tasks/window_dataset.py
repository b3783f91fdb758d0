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

    With `shuffle`, every pass over the data gets a fresh order drawn from (seed, pass number). A pass is
    counted when batch 0 is requested: Keras starts the next epoch's (prefetching) iterator before it calls
    `on_epoch_end`, so reshuffling there would race with the reads and make training non-deterministic.
    `max_windows` caps a shuffled pass: each epoch then sees a fresh random sample of that many windows,
    which bounds the cost of an epoch however many series there are.
    """

    def __init__(self, source: WindowSource, split: str, batch_size: int, shuffle: bool, seed: int = 0,
                 max_windows: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source, self.starts, self.batch_size = source, source.starts[split], batch_size
        self.shuffle, self.seed, self.passes = shuffle, seed, 0
        self.order = np.arange(len(self.starts))
        self.per_pass = min(len(self.starts), max_windows) if (shuffle and max_windows) else len(self.starts)

    def __len__(self) -> int:
        return math.ceil(self.per_pass / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index == 0 and self.shuffle:
            self.passes += 1
            self.order = np.random.default_rng([self.seed, self.passes]).permutation(len(self.starts))
        batch = self.order[index * self.batch_size:min((index + 1) * self.batch_size, self.per_pass)]
        return self.source.window(self.starts[batch])
