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
    """Batches (inputs [batch, lookback, features], targets [batch, horizon]) of one split of a WindowSource."""

    def __init__(self, source: WindowSource, split: str, batch_size: int, shuffle: bool, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.source, self.starts, self.batch_size, self.shuffle = source, source.starts[split], batch_size, shuffle
        self.rng = np.random.default_rng(seed)  # seeded: same order on every run
        self.order = self.rng.permutation(len(self.starts)) if shuffle else np.arange(len(self.starts))

    def __len__(self) -> int:
        return math.ceil(len(self.starts) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.source.window(self.starts[batch])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.permutation(len(self.starts))
