"""Keras input pipeline that cuts windows out of the shared series arrays batch by batch.

Each batch is one fancy-indexing gather (`features[starts[:, None] + offsets]`), so training never holds
more than the series and one batch in memory, and measured no slower than `model.fit` on fully
materialised numpy arrays (benchmarks/training_input.py).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from forecasting.windows import WindowSource


class WindowDataset(keras.utils.PyDataset):
    """Batches (inputs [batch, lookback, features], targets [batch, horizon]) of one split of a WindowSource.

    With `shuffle` (training), the dataset is an endless stream that `fit` cuts into epochs of
    `batches_per_epoch` batches (pass it as `steps_per_epoch`, with `shuffle=False`). Batch `i` is batch
    `i % batches_per_epoch` of epoch `i // batches_per_epoch`, and each epoch visits the sample in its own
    seeded random order: every batch is a pure function of its index and the seed. That is what makes
    training reproducible. Keras' own batch shuffling draws from Python's process-wide `random` module in a
    background thread, where any other thread's draw (Prefect's websocket keep-alive pings, its services'
    jitter) changes the order; and per-epoch state set in `on_epoch_end` would race with the reads of the
    next epoch, which Keras starts prefetching before it calls that hook.

    `max_windows` bounds an epoch to that many windows however many series there are: each epoch draws its
    own seeded sample, so over several epochs training sees all windows. `priority` (a boolean mask over
    the split's windows) instead fixes the sample, those windows first: a warm start trains on every
    window its champion has not seen, topped up with a sample of the ones it has. Without `shuffle` (validation) the dataset is
    finite and in order; `max_windows` then keeps a seeded sample of that many windows in their original
    order.
    """

    def __init__(self, source: WindowSource, split: str, batch_size: int, shuffle: bool, seed: int = 0,
                 max_windows: int | None = None, priority: np.ndarray | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source, self.starts, self.batch_size = source, source.starts[split], batch_size
        self.shuffle, self.seed = shuffle, seed
        count = len(self.starts)
        rng = np.random.default_rng(seed)
        order = rng.permutation(count) if shuffle else np.arange(count)
        if shuffle and priority is not None:
            order = order[np.argsort(~np.asarray(priority, dtype=bool)[order], kind="stable")]
            order = rng.permutation(order[:max_windows]) if max_windows else order
        if not shuffle and max_windows and count > max_windows:  # a fixed sample, kept in order
            order = np.sort(rng.choice(count, max_windows, replace=False))
        self.order = order[:max_windows] if (shuffle and max_windows) else order  # the windows of epoch 0
        self.per_pass = len(self.order)
        # Without a priority, each epoch draws its own sample when the split has more windows than an epoch
        # takes: epochs stay short (cheap to validate after) yet training sees every window over the run.
        self.resample = shuffle and priority is None and self.per_pass < count
        self._epoch_order: tuple[int, np.ndarray] = (0, self.order)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.per_pass / self.batch_size)

    @property
    def epoch_batch_size(self) -> int:
        """Training: the size of every batch of an epoch, `batch_size` or a little less, so that the epoch's
        batches are all one size (532 windows: five of 107, the last topped up with the epoch's first 3
        windows, not four of 128 and one of 20). TensorFlow traces the training step once per batch shape:
        a short last batch cost a second trace (0.9 s on two cores for a daily network), and the windows a
        daily series gives are often fewer than an epoch could take. Validation keeps `batch_size`."""
        if not self.shuffle or not self.per_pass:
            return self.batch_size
        return math.ceil(self.per_pass / self.batches_per_epoch)

    @property
    def num_batches(self) -> int | None:
        """None (endless) when shuffled for training; the batches of one pass otherwise."""
        return None if self.shuffle else self.batches_per_epoch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The windows epoch `epoch` (from 0) visits, in order: the sample as drawn in epoch 0, then one
        seeded by (seed, epoch): a fresh sample when resampling, else a permutation of the same one."""
        cached_epoch, order = self._epoch_order
        if cached_epoch != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            if epoch == 0:
                order = self.order
            elif self.resample:
                order = rng.choice(len(self.starts), self.per_pass, replace=False)
            else:
                order = rng.permutation(self.order)
            self._epoch_order = (epoch, order)  # one assignment: a concurrent reader sees either pair whole
        return order

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.shuffle:
            epoch, position = divmod(index, self.batches_per_epoch)
            size = self.epoch_batch_size  # the last batch wraps round to the epoch's first windows
            batch = self.epoch_order(epoch)[np.arange(position * size, (position + 1) * size) % self.per_pass]
        else:
            batch = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x, y = self.source.window(self.starts[batch])
        weights = self.source.target_weights(self.starts[batch])  # imputed targets weigh nothing
        return (x, y) if weights is None else (x, y, weights)
