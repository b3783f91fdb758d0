"""The Prefect tasks, one module per stage: each reads through the stores, calls the core (forecasting/),
writes, logs and makes its artifacts."""

import os

# Quiet, offline defaults for libraries imported later; they must be set before those imports, and an
# explicit value in the environment always wins.
_ENVIRONMENT_DEFAULTS = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorFlow's C++ start-up chatter
    "GX_ANALYTICS_ENABLED": "false",  # Great Expectations telemetry: a scheduled job makes no such calls
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # Prefect server telemetry (also "database is locked" noise)
    # The temporary local API's first start on a machine creates Prefect's database (migrations): on two busy
    # cores that took over Prefect's 20 s default, and `make run` on a fresh machine failed before any stage.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}
for _name, _value in _ENVIRONMENT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
