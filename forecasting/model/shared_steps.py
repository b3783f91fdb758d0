"""One compiled training step and one compiled test step for every network of an architecture (TensorFlow).

Why: Keras compiles a training and a test step per model, and an ensemble's members that train side by
side on the CPU (members_side_by_side) are three models: each traced its own steps, about 0.7-0.8 s for the
training step and 0.2 s for the test step of a daily network on two cores. Tracing is Python, under the
interpreter lock, so the three members traced one after another while nothing else ran. These steps take
the network's variables as arguments instead of closing over them, so TensorFlow traces each once for the
architecture and every member reuses the graph (about 0.02 s for a second network's first step).

They compute what Keras' own steps compute, op for op: the forward pass and `compute_loss` of one template
network in a `keras.StatelessScope` that maps its variables onto the trained network's, gradients by
`tf.GradientTape`, and Keras' Adam update (keras/src/optimizers/adam.py, `update_step`) on moments this
object keeps for each network. tests/forecasting/test_shared_steps.py holds the weights and losses
bit-identical to `train_on_batch` and `test_on_batch`. The learning rate is read from the network's own
optimizer at every step, so Keras callbacks that change it (ReduceLROnPlateau) work as with Keras' steps.
Only for optimizers this reproduces (`supports`): Adam with a learning rate (not a schedule) and without
AMSGrad, weight decay, clipping, moving averages, gradient accumulation or loss scaling; anything else keeps
Keras' own steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def supports(model: Any) -> bool:
    """Whether SharedSteps trains `model` exactly as its own compiled optimizer would (TensorFlow only)."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    return (keras.backend.backend() == "tensorflow" and type(optimizer) is keras.optimizers.Adam
            and not optimizer.amsgrad and optimizer.weight_decay is None and optimizer.clipnorm is None
            and optimizer.clipvalue is None and optimizer.global_clipnorm is None and not optimizer.use_ema
            and optimizer.loss_scale_factor is None and optimizer.gradient_accumulation_steps is None
            and isinstance(optimizer.learning_rate, keras.Variable)  # not a schedule: read per step as a variable
            and model.dtype_policy.name == "float32")


@dataclass
class _NetworkState:
    """One network's variables as the compiled steps take them, and its Adam moments and step count."""

    model: Any  # held so its id is never reused for another network while this object lives
    trainable: list[Any]
    non_trainable: list[Any]
    momentums: list[Any]
    velocities: list[Any]
    iterations: Any


class SharedSteps:
    """`train(model, x, y, weights)` and `test(...)` for every network of `template`'s architecture, each
    returning the batch's loss total and count as Keras' loss tracker holds them after `train_on_batch`
    (float32: the loss times the batch size, and the batch size)."""

    def __init__(self, template: Any):
        import tensorflow as tf

        if not supports(template):
            raise ValueError(f"{template.name}'s optimizer is not one SharedSteps reproduces")
        self.template = template
        optimizer = template.optimizer
        self.beta_1, self.beta_2, self.epsilon = optimizer.beta_1, optimizer.beta_2, optimizer.epsilon
        self._states: dict[int, _NetworkState] = {}
        # No AutoGraph: the steps hold no tensor-dependent Python control flow (their loops run over the
        # variable lists, at trace time), and converting their source cost a quarter of the training step's
        # trace (0.61-0.68 s against 0.88-0.90 s on two cores).
        self._train = tf.function(self._train_step, autograph=False)
        self._test = tf.function(self._test_step, autograph=False)

    def tracing_counts(self) -> tuple[int, int]:
        """How many times the training and the test step were traced (tests)."""
        return self._train.experimental_get_tracing_count(), self._test.experimental_get_tracing_count()

    def train(self, model: Any, x: np.ndarray, y: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[np.float32, np.float32]:
        state = self._state(model)
        loss = self._train(state.trainable, state.non_trainable, state.momentums, state.velocities,
                           state.iterations, model.optimizer.learning_rate.value, x, y, weights)
        return _tracked(loss, len(x))

    def test(self, model: Any, x: np.ndarray, y: np.ndarray,
             weights: np.ndarray | None = None) -> tuple[np.float32, np.float32]:
        state = self._state(model)
        return _tracked(self._test(state.trainable, state.non_trainable, x, y, weights), len(x))

    def _state(self, model: Any) -> _NetworkState:
        state = self._states.get(id(model))
        if state is None:
            import tensorflow as tf

            if [v.shape for v in model.variables] != [v.shape for v in self.template.variables]:
                raise ValueError(f"{model.name} does not share {self.template.name}'s architecture")
            optimizer = model.optimizer
            if not supports(model) or (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) != (
                    self.beta_1, self.beta_2, self.epsilon):
                raise ValueError(f"{model.name}'s optimizer differs from {self.template.name}'s")
            trainable = [variable.value for variable in model.trainable_variables]  # the tf.Variables
            state = _NetworkState(
                model, trainable, [variable.value for variable in model.non_trainable_variables],
                [tf.Variable(tf.zeros_like(variable), trainable=False) for variable in trainable],
                [tf.Variable(tf.zeros_like(variable), trainable=False) for variable in trainable],
                tf.Variable(0, dtype=tf.int64, trainable=False))
            self._states[id(model)] = state
        return state

    def _forward_and_loss(self, trainable: list[Any], non_trainable: list[Any], x: Any, y: Any, weights: Any,
                          training: bool) -> tuple[Any, list[Any]]:
        """The template's forward pass and loss on the given variables' values; the loss and the new values
        of its non-trainable variables (dropout's random states advance in training)."""
        import keras

        template = self.template
        mapping = [*zip(template.trainable_variables, trainable), *zip(template.non_trainable_variables, non_trainable)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            y_pred = template(x, training=training)
            # Inside the scope, so weight penalties (L1/L2) read the trained network's weights too.
            loss = template.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=weights, training=training)
            updated = [scope.get_current_value(variable) for variable in template.non_trainable_variables]
        return loss, [value if value is not None else old for value, old in zip(updated, non_trainable)]

    def _train_step(self, trainable, non_trainable, momentums, velocities, iterations, learning_rate, x, y, weights):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, updated = self._forward_and_loss(trainable, non_trainable, x, y, weights, training=True)
        gradients = tape.gradient(loss, trainable)
        # Keras' Adam.update_step, in its order of operations, so the weights are those train_on_batch trains.
        lr = tf.cast(learning_rate, tf.float32)
        local_step = tf.cast(iterations + 1, tf.float32)
        beta_1_power = tf.pow(tf.cast(self.beta_1, tf.float32), local_step)
        beta_2_power = tf.pow(tf.cast(self.beta_2, tf.float32), local_step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        for gradient, variable, m, v in zip(gradients, trainable, momentums, velocities, strict=True):
            m.assign_add(tf.multiply(tf.subtract(gradient, m), 1 - self.beta_1))
            v.assign_add(tf.multiply(tf.subtract(tf.square(gradient), v), 1 - self.beta_2))
            variable.assign_sub(tf.divide(tf.multiply(m, alpha), tf.add(tf.sqrt(v), self.epsilon)))
        iterations.assign_add(1)
        for variable, value in zip(non_trainable, updated, strict=True):
            variable.assign(value)
        return loss

    def _test_step(self, trainable, non_trainable, x, y, weights):
        return self._forward_and_loss(trainable, non_trainable, x, y, weights, training=False)[0]


def _tracked(loss: Any, count: int) -> tuple[np.float32, np.float32]:
    """(total, count) as Keras' loss tracker (a Mean weighted by batch size, float32) holds one batch."""
    count32 = np.float32(count)
    return np.float32(np.float32(loss.numpy()) * count32), count32
