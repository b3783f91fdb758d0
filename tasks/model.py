"""The forecasting network: stacked LSTM layers with dropout and a direct multi-horizon head.

After the post this project grew from (three LSTM(50) + Dropout(0.2) + Dense), with two fixes: the head
emits all `horizon` steps at once (no recursive feeding of predictions), and the cell is Keras' own
`keras.layers.LSTM`, which implements the real equations
    i, f, o = sigmoid(W x_t + U h_(t-1) + b)   g = tanh(W_g x_t + U_g h_(t-1) + b_g)
    c_t = f * c_(t-1) + i * g                  h_t = o * tanh(c_t)
with the settings cuDNN needs (tanh/sigmoid activations, no recurrent dropout, not unrolled, with bias),
so on a GPU Keras runs the fused cuDNN kernel. Only the Keras 3 API is used: the same code runs on the
TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import keras

# The arguments that keep a recurrent layer eligible for the cuDNN kernel (see keras.layers.LSTM).
CUDNN_REQUIREMENTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "recurrent_dropout": 0.0,
                      "unroll": False, "use_bias": True}


def build_lstm_model(*, lookback: int, horizon: int, n_features: int = 1, units: int = 32, layers: int = 2,
                     dropout: float = 0.2, learning_rate: float = 1e-3, seed: int = 42) -> keras.Model:
    """Compiled model mapping [batch, lookback, n_features] inputs to [batch, horizon] scaled forecasts.

    units: cells per LSTM layer; layers: stacked LSTM layers; dropout: rate after each LSTM layer
    (between layers, never recurrent, which would disable cuDNN); seed: seeds the dropout masks and
    initialisers so two builds with the same seed start identical.
    """
    inputs = keras.Input(shape=(lookback, n_features), name="history")  # [batch, lookback, features]
    x = inputs
    for layer in range(layers):
        last = layer == layers - 1
        x = keras.layers.LSTM(
            units, return_sequences=not last, name=f"lstm_{layer + 1}",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + layer),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + layer),
            **CUDNN_REQUIREMENTS,
        )(x)  # [batch, lookback, units] except the last: [batch, units]
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seed + layer, name=f"dropout_{layer + 1}")(x)
    outputs = keras.layers.Dense(horizon, name="horizon_head", dtype="float32",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=seed + layers))(x)
    model = keras.Model(inputs, outputs, name="lstm_forecaster")  # [batch, horizon]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse", metrics=["mae"])
    return model


def recurrent_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]


def is_cudnn_eligible(layer: keras.layers.Layer) -> bool:
    """True when a recurrent layer's config satisfies every cuDNN kernel requirement."""
    config = layer.get_config()
    return all(config.get(key) == value for key, value in CUDNN_REQUIREMENTS.items())
