"""One typed configuration for the whole pipeline.

Precedence, highest first: explicit overrides (CLI options and flow parameters), environment variables
(`LSTM_FORECAST_<FIELD>`, e.g. `LSTM_FORECAST_DATA_DIR`), a TOML file (`lstm-forecast.toml` in the working
directory, or the path in `LSTM_FORECAST_CONFIG`), then the defaults below. The README's "Settings" table
documents the same fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource
from upath import UPath

from forecasting.paths import as_path, is_local

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_INPUT = PROJECT_ROOT / "data" / "sample"
CONFIG_ENV = "LSTM_FORECAST_CONFIG"
DEFAULT_CONFIG_FILE = "lstm-forecast.toml"

FillMethod = Literal["auto", "ffill", "bfill", "linear", "time", "seasonal", "seasonal_linear", "model"]

DASK_PREFIX = "dask:"


def validate_runner_spec(spec: str) -> str:
    """The `task_runner` setting, checked: `threads`, `dask` or `dask:<address>`."""
    if spec in ("threads", "dask") or (spec.startswith(DASK_PREFIX) and len(spec) > len(DASK_PREFIX)):
        return spec
    raise ValueError(f"task_runner {spec!r} is not one of 'threads', 'dask' or 'dask:<scheduler address>'")


class Settings(BaseSettings):
    """Paths, database and model hyper-parameters. Sizes are in periods of the data's frequency."""

    model_config = SettingsConfigDict(env_prefix="LSTM_FORECAST_", extra="forbid", validate_default=True)

    input_path: UPath = Field(UPath(SAMPLE_INPUT), description="CSV/Parquet file or folder of them to ingest "
                              "(a local path or an fsspec URL).")
    data_dir: UPath = Field(UPath("data/store"), description="Root of every store the pipeline writes (a local "
                            "path or an fsspec URL such as s3://bucket/prefix).")
    database_secret: str | None = Field(
        None, description="Name of a Prefect Secret block whose value is the database URL; wins over database_url.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the forecasts table; default: SQLite file in data_dir. Put credentials "
        "in the environment (LSTM_FORECAST_DATABASE_URL) or a Prefect Secret block, never in files; logs mask the "
        "password.")
    horizon: int | None = Field(None, ge=1, le=1000, description="Steps to forecast; default by frequency.")
    lookback: int | None = Field(None, ge=2, le=5000, description="Input window length (what the seasonal base "
                                 "reads); default by frequency: two weeks for hourly data, 28 days for daily, 52 "
                                 "weeks for weekly, 24 months for monthly; where the longest series is shorter "
                                 "than two such windows, a shorter one (sub-daily: the recurrent lookback; else "
                                 "half, keeping two seasons where the window has them: daily 14, weekly 26, "
                                 "monthly unchanged).")
    recurrent_lookback: int | None = Field(
        None, ge=2, le=5000, description="The most recent steps of each window the recurrent layers read; default "
        "by frequency: a week of hourly data's two-week windows, else the whole window.")
    max_epochs: int = Field(40, ge=1, le=10_000, description="Epoch bound of a full retrain (early stopping usually "
                            "ends it sooner).")
    patience: int = Field(5, ge=1, description="Early-stopping patience: epochs without progress on the "
                          "validation loss before training stops (the best weights seen are kept).")
    min_improvement: float = Field(
        0.005, ge=0.0, lt=1.0, description="What counts as progress for early stopping: a validation loss this "
        "fraction below the last progress (0.005: 0.5%; 0: any decrease). Smaller decreases still keep their "
        "weights if best, but do not prolong training.")
    batch_size: int = Field(128, ge=1, description="Training batch size on the CPU (an epoch's batches are all one "
                            "size: this, or a little less where the epoch's windows do not divide into it).")
    max_windows_per_epoch: int = Field(
        2048, ge=1, description="At most this many training windows per epoch (each epoch its own seeded sample): "
        "short epochs let early stopping end training as soon as validation loss stops improving.")
    max_val_windows: int = Field(
        2048, ge=1, description="At most this many validation windows (a fixed seeded sample) scored per epoch "
        "for early stopping; calibration and the champion comparison use theirs in full.")
    gpu_batch_size: int = Field(1024, ge=1, description="Training batch size per GPU (GPUs want larger batches).")
    mixed_precision: bool = Field(False, description="Float16 compute on GPUs (float32 weights and outputs).")
    cell: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell type.")
    units: int = Field(32, ge=1, description="Units per recurrent layer.")
    layers: int = Field(2, ge=1, le=8, description="Stacked recurrent layers.")
    ensemble_members: int | None = Field(
        None, ge=1, le=10, description="Networks trained from different seeds whose forecasts (each quantile) are "
        "averaged; default: 3 where the run trains on a single series (one network on one series' windows is one "
        "draw of its seed), else 1 (a panel's network learns from many series; three did not pay on one).")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="Dropout after each recurrent layer.")
    l1: float = Field(0.0, ge=0.0, description="L1 penalty on recurrent layer weights.")
    l2: float = Field(0.0, ge=0.0, description="L2 penalty on recurrent layer weights.")
    model_base: Literal["seasonal", "level"] = Field(
        "seasonal", description="What the network corrects: seasonal (exponential smoothing of each window "
        "with the series' own alpha, its seasonal profile where it pays, and drift) or level (the window's "
        "level alone).")
    learning_rate: float = Field(1e-3, gt=0.0, description="Adam's initial learning rate.")
    lr_patience: int = Field(2, ge=1, description="Epochs without improvement before the learning rate halves.")
    target_transform: Literal["auto", "log1p", "none"] = Field(
        "auto", description="auto: log1p for series never negative in training; log1p: all; none: none.")
    full_retrain_days: int = Field(7, ge=0, description="Days between full retrains; warm-start in between.")
    warm_epochs: int = Field(10, ge=1, description="Epoch bound of a warm-started retrain.")
    warm_windows_per_epoch: int = Field(
        4096, ge=1, description="Training windows per epoch of a warm start: those the champion has not "
        "trained on first, then a seeded sample of the rest.")
    holdout_windows: int = Field(28, ge=1, description="Latest validation windows per series on which challenger, "
                                 "champion and seasonal naive are scored, for promotion and per-series fallback "
                                 "(7 windows overlapping by 13 days decided on too little); for sub-daily data a day "
                                 "apart, each starting at the time of day of the published forecast.")
    val_fraction: float = Field(0.2, gt=0.0, lt=0.9, description="Share of the time range held out for "
                                "validation (at least one horizon).")
    fill_method: FillMethod = Field(
        "auto", description="How gaps are filled: auto (seasonal_linear for data finer than a day, whose gaps of "
        "hours cut through the daily cycle; linear otherwise), ffill, bfill, linear, time, seasonal (the value one "
        "season back), seasonal_linear (the value one season back, moved to meet both ends of the gap) or model "
        "(the champion's forecasts).")
    max_gap: int | None = Field(None, ge=0, description="Longest gap (periods) gap-fill always fills; the history "
                                "before a longer one is set aside unless the gap is at most half the points "
                                "observed before it (then it is filled too). Default by frequency: 14 periods, two "
                                "days of sub-daily data (48 hourly).")
    max_staleness: int | None = Field(None, ge=0, description="Periods a series may lag the as-of before "
                                      "quarantine (publication forecasts a lagging series through its missing "
                                      "periods). Default by frequency: 7 periods, two days of sub-daily data (48 "
                                      "hourly).")
    max_robust_z: float = Field(50.0, gt=0.0, description="Values further than this many robust standard "
                                "deviations from their series' median (on a signed log1p scale) "
                                "are quarantined as absurd outliers.")
    interval_level: float = Field(0.8, gt=0.0, lt=1.0, description="Coverage of the prediction interval.")
    explain_windows: int = Field(
        512, ge=0, description="Validation windows (a seeded sample) on which each trained version's channel and "
        "lookback importance is measured (explanations.json); 0 turns explanations off.")
    explain_repeats: int = Field(3, ge=1, description="Shuffles per input group in the permutation importance.")
    accuracy_days: int = Field(
        90, ge=1, description="Publications this many days back (by run date) are rescored each run, so late or "
        "restated actuals update their realised accuracy; older rows stay as scored.")
    drift_mase_ratio: float = Field(
        1.5, gt=0.0, description="Drift when the champion's realised MASE over its last 7 scored publications is "
        "over this many times the holdout MASE of its last full retrain, and also over drift_naive_ratio times "
        "seasonal naive's on the same points (a week hard for every method is not drift).")
    drift_naive_ratio: float = Field(
        1.0, gt=0.0, description="See drift_mase_ratio.")
    drift_coverage_band: float = Field(
        0.15, gt=0.0, lt=1.0, description="Drift when realised interval coverage is further than this from "
        "interval_level.")
    drift_min_points: int = Field(
        50, ge=1, description="Fewest scored points (since the champion's last full retrain) before drift is "
        "judged at all: fewer are too noisy to act on.")
    seed: int = Field(42, description="Seeds weights, dropout and the order of training windows: same data, same "
                      "seed, same forecasts.")
    notify_block: str | None = Field(
        None, description="Prefect notification block told when a flow fails or drift is found, as "
        "<block-type>/<block-name> "
        "(e.g. slack-webhook/forecast-alerts).")
    task_runner: str = Field("threads", description="Where per-series stages run: threads, dask (local "
                             "cluster) or dask:<scheduler address>.")
    dask_workers: int = Field(2, ge=1, description="Worker processes of the local Dask cluster (task_runner=dask).")
    fanout_series: int = Field(200, ge=1, description="Series per task when a per-series stage fans out.")
    incremental: bool = Field(True, description="Daily runs after the first validate, fill and window only the "
                              "new rows (full runs every full_retrain_days); false: every run redoes all history.")

    @field_validator("data_dir", "input_path", mode="before")
    @classmethod
    def _expand(cls, path: Any) -> Any:
        if isinstance(path, dict):  # UPath's own serialised form (model_dump), validated by UPath itself
            return path
        return as_path(path)

    @field_validator("task_runner", mode="after")
    @classmethod
    def _runner(cls, spec: str) -> str:
        return validate_runner_spec(spec)

    @model_validator(mode="after")
    def _default_database(self) -> "Settings":
        if not self.database_url and not self.database_secret:
            if not is_local(self.data_dir):
                raise ValueError(f"data_dir {str(self.data_dir)!r} is a URL, where the default SQLite file cannot "
                                 "live: set database_url (LSTM_FORECAST_DATABASE_URL) or database_secret (a Prefect Secret block)")
            self.database_url = f"sqlite:///{(self.data_dir / 'forecasts.sqlite').resolve()}"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        elif CONFIG_ENV in os.environ:
            raise FileNotFoundError(f"{CONFIG_ENV}={config_file} does not exist; unset it or point it at a TOML file")
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from defaults, config file and environment, with non-None overrides applied on top."""
    return Settings(**{name: value for name, value in overrides.items() if value is not None})


def settings_reference() -> str:
    """Every setting as a Markdown table (name, environment variable, type, default, meaning): the text of
    docs/settings.md, which a test keeps in step. `python -m forecasting.settings` prints it."""
    rows = ["# Settings", "",
            "Generated from `forecasting/settings.py` by `python -m forecasting.settings > docs/settings.md`; "
            "a test fails when the two differ.", "", _PRECEDENCE, "",
            "| name | environment variable | type | default | meaning |", "|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        variable = f"{Settings.model_config['env_prefix']}{name.upper()}"
        rows.append(f"| `{name}` | `{variable}` | {_type_name(field.annotation)} | {_default_text(name, field.default)} "
                    f"| {meaning} |")
    return "\n".join(rows) + "\n"


_PRECEDENCE = ("Precedence, highest first: CLI options and flow parameters, environment variables, a TOML file "
               f"(`{DEFAULT_CONFIG_FILE}` in the working directory, or the path in `{CONFIG_ENV}`), the defaults "
               "below. Sizes are in periods of the data's frequency.")


def _type_name(annotation: Any) -> str:
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Literal:
        return " / ".join(f"`{value}`" for value in args)
    if args and len(args) < len(get_args(annotation)):  # X | None
        return _type_name(args[0]) + " or none"
    if annotation is UPath:
        return "path or URL"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(name: str, default: Any) -> str:
    if name == "database_url":
        return "SQLite file `<data_dir>/forecasts.sqlite`"
    if default is None:
        return "by frequency" if name in _BY_FREQUENCY else "none"
    if isinstance(default, Path):
        path = Path(default)
        return f"`{path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}`"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


_BY_FREQUENCY = {"horizon", "lookback", "recurrent_lookback", "max_gap"}


if __name__ == "__main__":
    print(settings_reference(), end="")
