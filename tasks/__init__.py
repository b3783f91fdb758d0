"""The Prefect tasks, one module per stage: each reads through the stores, calls the core (forecasting/),
writes, logs and makes its artifacts."""

import os

# Quiet, offline defaults for libraries imported later; they must be set before those imports, and an
# explicit value in the environment always wins.
_ENVIRONMENT_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up chatter
    "GX_ANALYTICS_ENABLED": "false",  # Great Expectations telemetry: a scheduled job makes no such calls
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # Prefect server telemetry (also "database is locked" noise)
}
for _name, _value in _ENVIRONMENT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
