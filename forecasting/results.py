"""What each stage of a run hands the next: typed, documented results (the flow reads as the contract).

Paths are strings (local paths or fsspec URLs), so results stay small and cross processes (Dask workers,
Prefect's task results) as they are. Frozen: a later stage cannot change what an earlier one reported. The
ingest stage's result is `stores.archive.IngestSummary`; the daily flow returns {stage name: result}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Validated:
    """The validate stage: the run's valid rows (`valid_path`) and what was checked and held back."""

    as_of: str  # the forecast origin, ISO-8601 UTC
    run_date: str  # the as-of's date: the partition every later stage writes
    frequency: str  # the panel's frequency, a pandas offset alias ("D", "h", "MS")
    valid_path: str  # validated/run_date=.../observations.parquet
    rows_checked: int
    mode: str  # "full" or "incremental"
    full_reason: str | None  # why the run validated everything (None: incremental)
    base_run_date: str | None  # the earlier run an incremental run built on
    base_as_of: str | None
    series_rebuilt: int | None  # series an incremental run checked in full
    rows_valid: int
    rows_quarantined: int
    series_valid: int
    covariates: list[str]
    failed_expectations: list[str]  # "<expectation>:<column>" of the GX suite's failures
    duration_s: float


@dataclass(frozen=True)
class Filled:
    """The gap-fill stage: the regular, filled series (`clean_path`, every imputed point marked)."""

    clean_path: str  # clean/run_date=.../series.parquet
    rows: int
    series: int
    imputed: int  # points gap-fill invented (marked `imputed`)
    imputed_share: float
    series_cut_at_gap: int  # series whose history before a gap over max_gap was set aside (still forecast)
    rows_set_aside: int
    series_bridged_gap: int  # series with a gap over max_gap that was filled: short beside the history before it
    mode: str  # "full" or "incremental"
    rows_processed: int
    series_rebuilt: int
    chunks: int  # fanned-out gap-fill tasks
    workers: int  # processes that ran them
    duration_s: float


@dataclass(frozen=True)
class Windowed:
    """The windows stage: lookback/horizon windows over the featured series (`folder`), or why none."""

    lookback: int
    horizon: int
    frequency: str
    cutoff: str | None  # last training target; validation targets come after it
    features: list[str]  # the model's input channels, the scaled target first
    train_windows: int
    val_windows: int
    series: int
    short_series: list[str]  # shorter than the lookback: published by seasonal naive
    mode: str  # "full" or "incremental"
    rows_processed: int
    as_of: str
    folder: str | None  # windows/run_date=.../ (series.parquet, index.parquet, scalers.json, meta.json)
    untrainable: str | None = None  # why no model can be trained this run (None: trainable)
    scalers_fitted_as_of: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the settings the windows depend on
    duration_s: float = 0.0

    @classmethod
    def without_training(cls, reason: str, *, lookback: int, horizon: int, frequency: str, series: int,
                         as_of: str, duration_s: float) -> "Windowed":
        """The summary of a run with too little history to train on: no windows, and why."""
        return cls(lookback=lookback, horizon=horizon, frequency=frequency, cutoff=None, features=[], train_windows=0,
                   val_windows=0, series=series, short_series=[], mode="full", rows_processed=0, as_of=as_of,
                   folder=None, untrainable=reason, duration_s=duration_s)


@dataclass(frozen=True)
class Trained:
    """The train stage: the challenger it registered (or reused), and whether it publishes."""

    model_version: str | None  # None: nothing trained this run
    model_path: str | None
    device: str | None
    promoted: bool
    champion_version: str | None  # the version that publishes after this run (None: seasonal naive)
    warm_start: bool
    decision: str  # the promotion decision, in words
    holdout: dict[str, Any] | None  # holdout scores and per-series choices (promotion's Verdict)
    interval_val_coverage: float | None
    reused: bool  # a rerun of the as-of reused the model trained on exactly this input
    epochs_run: int | None
    best_epoch: int | None
    val_loss: float | None
    train_seconds: float | None
    duration_s: float

    @classmethod
    def from_reuse(cls, metadata: dict[str, Any], model_path: str, champion_version: str | None,
                   duration_s: float) -> "Trained":
        """The summary of a rerun that reused the version trained on exactly this input (its metadata)."""
        return cls(model_version=metadata["version"], model_path=model_path, device=metadata.get("device"),
                   promoted=bool(metadata.get("promoted")), champion_version=champion_version,
                   warm_start=bool(metadata.get("warm_start")), decision=metadata.get("decision", ""),
                   holdout=metadata["holdout"], interval_val_coverage=metadata["interval"]["val_coverage"],
                   reused=True, duration_s=duration_s,
                   **{k: metadata.get(k) for k in ("epochs_run", "best_epoch", "val_loss", "train_seconds")})

    @classmethod
    def nothing_trained(cls, decision: str, champion_version: str | None, duration_s: float) -> "Trained":
        """The summary of a run that trained nothing (too little history): the champion keeps publishing."""
        return cls(model_version=None, model_path=None, device=None, promoted=False,
                   champion_version=champion_version, warm_start=False, decision=decision, holdout=None,
                   interval_val_coverage=None, reused=False, epochs_run=0, best_epoch=None, val_loss=None,
                   train_seconds=0.0, duration_s=duration_s)


@dataclass(frozen=True)
class Explained:
    """The explain stage: what this run's version leans on (forecasting/explain.py), or why nothing."""

    model_version: str | None  # the version explained (None: nothing trained this run)
    path: str | None  # models/<version>/explanations.json
    explanation: dict[str, Any] | None  # forecasting.explain.Explanation.as_dict()
    reused: bool  # read back: measured by an earlier run on the same version
    note: str  # why nothing was measured ("" when something was)
    duration_s: float


@dataclass(frozen=True)
class Scored:
    """The realised-accuracy stage: earlier publications scored against what was observed since."""

    points_new: int  # accuracy rows added this run
    points_restated: int  # rows whose actual changed (a late or restated value) and were rescored
    publications_updated: int  # publications whose stored accuracy was rewritten
    last_7: dict[str, Any]  # forecasting.accuracy.Rolling over the latest 7 scored publications
    last_28: dict[str, Any]  # ... and the latest 28
    drift: str | None  # why the champion's realised accuracy counts as drift (None: it does not)
    notified: bool  # a notification about the drift went out
    duration_s: float


@dataclass(frozen=True)
class Published:
    """The publish stage: the rows written to Parquet and SQL for the run date."""

    run_date: str
    rows: int
    series: int
    series_by_model: int
    series_by_base: int
    parquet_path: str
    model_version: str  # the champion version, or "seasonal-naive"
    duration_s: float
    report_path: str | None = None  # the run's HTML report (None when it could not be written)
