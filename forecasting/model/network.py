"""The forecasting network: stacked recurrent layers with dropout and a direct multi-horizon quantile head.

After the post this project grew from (three LSTM(50) + Dropout(0.2) + Dense), with these fixes:
- the cell is Keras' own `keras.layers.LSTM` (or GRU), which implements the real equations
      i, f, o = sigmoid(W x_t + U h_(t-1) + b)   g = tanh(W_g x_t + U_g h_(t-1) + b_g)
      c_t = f * c_(t-1) + i * g                  h_t = o * tanh(c_t)
  with the settings cuDNN needs (tanh/sigmoid, no recurrent dropout, not unrolled, with bias), so on a
  GPU Keras runs the fused cuDNN kernel;
- the head emits all `horizon` steps at once, for several quantiles (median = point forecast, the outer
  pair = the interval), trained with the pinball loss instead of feeding predictions back in;
- each window is centred on its own recent level (the mean of its last season) before the recurrent
  layers, and the head's output is added to a forecast computed from the window itself (its level, or
  by default its level plus its average seasonal profile, see SeasonalBase), so one global model serves
  series at any level, follows level shifts without retraining and only learns what a seasonal forecast misses.
Only the Keras 3 API is used: the same code runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import keras
from keras import ops

from forecasting.model.devices import configure_cpu_threads
from forecasting.smoothing import base_period

configure_cpu_threads()  # before any model runs an op: every model is built or loaded through this module

Cell = Literal["lstm", "gru"]
Base = Literal["level", "seasonal"]
PACKAGE = "lstm_forecast"

# The arguments that keep a recurrent layer eligible for the cuDNN kernel (see keras.layers.LSTM / GRU).
CUDNN_REQUIREMENTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "recurrent_dropout": 0.0,
                      "unroll": False, "use_bias": True}
GRU_CUDNN_REQUIREMENTS = {**CUDNN_REQUIREMENTS, "reset_after": True}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CentreOnLevel(keras.layers.Layer):
    """Subtract each window's level (mean of channel 0 over its last `window` steps) from channel 0.

    [batch, lookback, features] -> same shape; the other channels (calendar, covariates) pass through.
    """

    def __init__(self, window: int, **kwargs):
        super().__init__(**kwargs)
        self.window = window

    def call(self, inputs):
        level = ops.mean(inputs[:, -self.window:, :1], axis=1, keepdims=True)  # [batch, 1, 1]
        return ops.concatenate([inputs[:, :, :1] - level, inputs[:, :, 1:]], axis=-1)

    def get_config(self):
        return {**super().get_config(), "window": self.window}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelectChannels(keras.layers.Layer):
    """[batch, steps, features] -> [batch, steps, len(channels)]: the listed input channels, in order."""

    def __init__(self, channels: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.channels = [int(c) for c in channels]

    def call(self, inputs):
        return ops.take(inputs, self.channels, axis=-1)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RestoreLevel(keras.layers.Layer):
    """Add the window level back: ([batch, horizon, quantiles], [batch, lookback, features]) -> first shape."""

    def __init__(self, window: int, **kwargs):
        super().__init__(**kwargs)
        self.window = window

    def call(self, inputs):
        outputs, history = inputs
        level = ops.mean(history[:, -self.window:, :1], axis=1, keepdims=True)  # [batch, 1, 1]
        return outputs + ops.cast(level, outputs.dtype)

    def get_config(self):
        return {**super().get_config(), "window": self.window}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SeasonalBase(keras.layers.Layer):
    """The forecast the network corrects: [batch, lookback, features] -> [batch, horizon] (scaled units).

    base[h] = level + profile[h mod period]. The period is `long_season` where the window holds two full
    long seasons (the week of sub-daily data), else `season`; profile is the average shape of the window's
    last full periods (each phase's mean over them, minus their overall mean) and level the mean of the
    window's last `level_window` steps less the profile's mean over those steps (with a weekly profile, a
    Sunday's level is not Monday's). It is a seasonal naive forecast that averages several seasons instead
    of copying one and follows the current level; with fewer than two full periods in the window (or season
    1) it is the level alone (weekly data with a 52-week lookback: copying last year's weeks was much worse
    than the level on the development panel's M4 weekly series). The network learns only what this
    forecast misses, so it starts where a classical method ends instead of learning the season from scratch.

    With `smoothing_channels` (models since the per-series smoothing statistics, forecasting/smoothing.py) the
    base follows each series' own statistics, read from the window's last step: the level is an
    exponentially weighted mean of the de-seasonalised window with the series' alpha, the profile is kept
    only where the series' seasonal flag is 1, and the series' drift is added per step ahead: simple
    exponential smoothing with Theta's drift, its parameters chosen per series on the training slice.
    On the development panel, the base alone (no network) scored MASE 0.74 against 0.88 for the fixed rule.

    With `profile_channel` (models since the profile channel) the profile is the window's last period of
    that channel, each phase's exponentially weighted average over the series' history (PROFILE in
    forecasting/smoothing.py), instead of the average of the window's own periods; the window still needs
    two full periods for a profile, so where the base has none nothing changes.
    """

    def __init__(self, horizon: int, season: int, level_window: int, long_season: int = 0,
                 smoothing_channels: Sequence[int] | None = None, profile_channel: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.horizon, self.season, self.level_window = horizon, season, level_window
        self.long_season = long_season
        self.smoothing_channels = None if smoothing_channels is None else [int(c) for c in smoothing_channels]
        self.profile_channel = None if profile_channel is None else int(profile_channel)

    def call(self, inputs):
        target = inputs[:, :, 0]  # [batch, lookback]
        lookback = target.shape[1]
        period = base_period(self.season, self.long_season, lookback)
        seasons = lookback // period if period > 1 else 0
        profile = None
        if seasons >= 2 and self.profile_channel is not None:  # phase j: position j of the window's last period
            profile = inputs[:, lookback - period:, self.profile_channel]
            profile = profile - ops.mean(profile, axis=1, keepdims=True)
        elif seasons >= 2:  # one season is no average: its noise would be copied forward as if it were the season
            recent = ops.reshape(target[:, lookback - seasons * period:], (-1, seasons, period))
            profile = ops.mean(recent, axis=1)  # [batch, period]: phase j = position j of each full period
            profile = profile - ops.mean(profile, axis=1, keepdims=True)
        if self.smoothing_channels is not None:
            return self._smoothed(inputs, target, profile, period)
        level = ops.mean(target[:, -self.level_window:], axis=1, keepdims=True)  # [batch, 1]
        if profile is None:
            return ops.repeat(level, self.horizon, axis=1)
        if self.level_window < period:  # over a whole period the profile averages to zero already
            level = level - ops.mean(profile[:, period - self.level_window:], axis=1, keepdims=True)
        # Step h (0-based) after the window's end falls on phase h mod period of the block of full periods.
        return level + ops.take(profile, [h % period for h in range(self.horizon)], axis=1)

    def _smoothed(self, inputs, target, profile, period):
        """level (exponentially weighted mean of the de-seasonalised window, weight alpha (1 - alpha)^age,
        normalised over the window) + seasonal flag * profile + drift * steps ahead."""
        lookback = target.shape[1]
        alpha, seasonal, drift = (inputs[:, -1, c:c + 1] for c in self.smoothing_channels)  # [batch, 1] each
        future = 0.0
        if profile is not None:
            profile = profile * seasonal
            offset = lookback % period  # window positions before the block of full periods
            target = target - ops.take(profile, [(i - offset) % period for i in range(lookback)], axis=1)
            future = ops.take(profile, [h % period for h in range(self.horizon)], axis=1)
        ages = ops.convert_to_tensor([float(lookback - 1 - i) for i in range(lookback)], dtype=target.dtype)
        weights = alpha * ops.power(1.0 - alpha, ages)  # [batch, lookback]
        level = ops.sum(weights * target, axis=1, keepdims=True) / ops.sum(weights, axis=1, keepdims=True)
        steps = ops.convert_to_tensor([float(h + 1) for h in range(self.horizon)], dtype=target.dtype)
        return level + future + drift * steps

    def get_config(self):
        return {**super().get_config(), "horizon": self.horizon, "season": self.season,
                "level_window": self.level_window, "long_season": self.long_season,
                "smoothing_channels": self.smoothing_channels, "profile_channel": self.profile_channel}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddBase(keras.layers.Layer):
    """([batch, horizon, quantiles] corrections, [batch, horizon] base) -> corrections + base per quantile."""

    def call(self, inputs):
        corrections, base = inputs
        return corrections + ops.cast(ops.expand_dims(base, -1), corrections.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PinballLoss(keras.losses.Loss):
    """Quantile (pinball) loss of [batch, horizon, quantiles] predictions against [batch, horizon] targets,
    averaged over quantiles per target: [batch, horizon], so a [batch, horizon] sample weight can mask
    single targets (imputed points)."""

    def __init__(self, quantiles: Sequence[float], name: str = "pinball", **kwargs):
        super().__init__(name=name, **kwargs)
        self.quantiles = [float(q) for q in quantiles]

    def call(self, y_true, y_pred):
        q = ops.convert_to_tensor(self.quantiles, dtype=y_pred.dtype)
        error = ops.expand_dims(ops.cast(y_true, y_pred.dtype), -1) - y_pred  # [batch, horizon, quantiles]
        return ops.mean(ops.maximum(q * error, (q - 1.0) * error), axis=-1)

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


def build_forecaster(*, lookback: int, horizon: int, n_features: int = 1, quantiles: Sequence[float] = (0.1, 0.5, 0.9),
                     cell: Cell = "lstm", units: int = 32, layers: int = 2, dropout: float = 0.2, l1: float = 0.0,
                     l2: float = 0.0, learning_rate: float = 1e-3, level_window: int = 7, seed: int = 42,
                     base: Base = "level", season: int = 1, long_season: int = 0,
                     recurrent_lookback: int | None = None,
                     smoothing_channels: Sequence[int] | None = None,
                     profile_channel: int | None = None, name: str | None = None, compile: bool = True) -> keras.Model:
    """Compiled model mapping [batch, lookback, n_features] to [batch, horizon, len(quantiles)] (scaled).

    cell: "lstm" or "gru"; units: cells per layer; layers: stacked recurrent layers; dropout: rate after
    each recurrent layer (never recurrent dropout, which would disable cuDNN); l1/l2: weight penalties on
    the recurrent layers' kernels; level_window: steps whose mean is the window level; seed: seeds every
    initialiser and dropout mask so two builds with the same seed start identical; base: what the head's
    output is added to, "level" (the window level) or "seasonal" (SeasonalBase with `season` and
    `long_season`); recurrent_lookback: the most recent steps of the window the recurrent layers read
    (None: all), while the seasonal base reads the whole window; smoothing_channels: the input channels of
    the series' smoothing statistics (alpha, seasonal flag, drift; forecasting/smoothing.py) the seasonal base
    follows (None: the mean of the last `level_window` steps and always the profile); profile_channel: the
    input channel of the base's seasonal profile (None: the average of the window's periods); name: the
    model's name (default `<cell>_forecaster`; an ensemble's members need their own); compile: False for an
    ensemble's members, which one compiled network trains in turn (MemberTrainer) and need no optimizer.
    """
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell must be 'lstm' or 'gru', not {cell!r}")
    recurrent = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    requirements = CUDNN_REQUIREMENTS if cell == "lstm" else GRU_CUDNN_REQUIREMENTS
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None
    history = keras.Input(shape=(lookback, n_features), name="history")  # [batch, lookback, features]
    x = history
    base_inputs = [*(smoothing_channels or []), *([] if profile_channel is None else [profile_channel])]
    if base_inputs:
        # The statistics are the base's parameters, constant per series: to the recurrent layers they would
        # only say which series a window comes from, which lets a small panel's network memorise series.
        # The profile channel is the base's too; the network corrects the base, it need not recompute it.
        x = SelectChannels([c for c in range(n_features) if c not in base_inputs], name="history_channels")(x)
    if recurrent_lookback is not None and recurrent_lookback < lookback:
        x = keras.layers.Cropping1D((lookback - recurrent_lookback, 0), name="recent_steps")(x)
    x = CentreOnLevel(level_window, name="centre_on_level")(x)
    for layer in range(layers):
        last = layer == layers - 1
        x = recurrent(
            units, return_sequences=not last, name=f"{cell}_{layer + 1}",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + layer),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + layer),
            kernel_regularizer=regularizer, recurrent_regularizer=regularizer, **requirements,
            # Unseeded, the layer's own seed generator draws its seed from Python's process-wide `random`,
            # which other threads (Prefect's) draw from too.
            seed=seed + layer,
        )(x)  # [batch, lookback, units], the last layer: [batch, units]
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seed + layer, name=f"dropout_{layer + 1}")(x)
    x = keras.layers.Dense(horizon * len(quantiles), name="horizon_head", dtype="float32",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + layers))(x)
    x = keras.layers.Reshape((horizon, len(quantiles)), name="by_quantile")(x)  # [batch, horizon, quantiles]
    if base == "seasonal":
        forecast = SeasonalBase(horizon, season, level_window, long_season, smoothing_channels, profile_channel,
                                name="seasonal_base", dtype="float32")(history)
        outputs = AddBase(name="add_base", dtype="float32")([x, forecast])
    else:
        outputs = RestoreLevel(level_window, name="restore_level", dtype="float32")([x, history])
    model = keras.Model(history, outputs, name=name or f"{cell}_forecaster")
    if compile:
        compile_forecaster(model, quantiles, learning_rate)
    return model


def build_ensemble(members: Sequence[keras.Model]) -> keras.Model:
    """One model whose output is the average of its members' outputs (each [batch, horizon, quantiles]).

    The members train in turn (forecasting/model/training.py, MemberTrainer); this model shares their layers,
    so it holds their trained weights, saves and loads as one file and predicts like a single forecaster.
    Averaging the quantiles themselves (not the members' losses) keeps the interval calibratable as one.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    history = keras.Input(shape=tuple(members[0].inputs[0].shape[1:]), name="history")
    outputs = keras.layers.Average(name="member_average", dtype="float32")([member(history) for member in members])
    return keras.Model(history, outputs, name="ensemble_forecaster")


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The forecasters a model averages: an ensemble's members, or the model itself."""
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return members or [model]


def seasonal_base_of(model: keras.Model) -> keras.layers.Layer | None:
    """The model's SeasonalBase layer (an ensemble's members share one definition: the first member's);
    None for models built with the level base."""
    return next((layer for layer in ensemble_members(model)[0].layers if isinstance(layer, SeasonalBase)), None)


def compile_forecaster(model: keras.Model, quantiles: Sequence[float], learning_rate: float) -> None:
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=PinballLoss(quantiles))


def recurrent_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every recurrent layer of the model (of all its members, for an ensemble)."""
    return [layer for member in ensemble_members(model) for layer in member.layers
            if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU))]


def is_cudnn_eligible(layer: keras.layers.Layer) -> bool:
    """True when a recurrent layer's config satisfies every cuDNN kernel requirement."""
    requirements = GRU_CUDNN_REQUIREMENTS if isinstance(layer, keras.layers.GRU) else CUDNN_REQUIREMENTS
    config = layer.get_config()
    return all(config.get(key) == value for key, value in requirements.items())
