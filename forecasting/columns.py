"""Column names of the long-format data contract, defined once.

Every frame in the pipeline is long format: one row per (series, timestamp). Functions take these names
as keyword defaults instead of spreading string literals through the code.
"""

SERIES_ID = "series_id"
TIMESTAMP = "timestamp"
VALUE = "value"
KEY = (SERIES_ID, TIMESTAMP)
REQUIRED = (SERIES_ID, TIMESTAMP, VALUE)

# Lineage columns added at ingestion: which archived file (content hash) and which line a row came from.
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"
# The original text of a timestamp or value that did not parse, kept so errors can quote it.
RAW_TIMESTAMP = "raw_timestamp"
RAW_VALUE = "raw_value"
LINEAGE = (SOURCE_FILE, SOURCE_ROW, RAW_TIMESTAMP, RAW_VALUE)

IMPUTED = "imputed"
REASON = "reason"
STAGE = "stage"

# The published forecast contract (Parquet and SQL).
ORIGIN = "origin"
STEP = "step"
YHAT = "yhat"
YHAT_LOWER = "yhat_lower"
YHAT_UPPER = "yhat_upper"
MODEL_VERSION = "model_version"
INGEST_SEQ = "ingest_seq"  # order in which files entered the store; a later file restates an earlier one
RUN_ID = "run_id"
RUN_DATE = "run_date"
FORECAST_COLUMNS = (
    SERIES_ID, ORIGIN, TIMESTAMP, STEP, YHAT, YHAT_LOWER, YHAT_UPPER, MODEL_VERSION, RUN_ID,
)
