"""The model: its configuration, the Keras 3 network, the window dataset that feeds it, training and
calibration, and the one module (devices) that asks a backend directly."""
