"""The forecasting core: parsing, validation rules, gap-filling, features, scaling, windows, the model,
promotion, metrics, explanations, realised accuracy. Plain functions and classes on pandas, numpy and Keras: no Prefect, no stores (those are
tasks/ and stores/), so it can be tested and reused on its own."""

import os

# TensorFlow's C++ start-up chatter, before anything imports it; an explicit value in the environment wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
