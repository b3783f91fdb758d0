"""The run's summaries as the Prefect UI shows them: the `run-metrics` artifact (rows in and out, imputed
share, model, timings), the `model-comparison` artifact (holdout MASE of challenger, champion and seasonal
naive), the `realised-accuracy` artifact and the rows of the `feature-importance` table."""

from __future__ import annotations

from typing import Any

from forecasting.forecast import FALLBACK_VERSION
from forecasting.results import Explained, Published, Scored, Trained


def metrics_markdown(summaries: dict[str, Any], published: Published) -> str:
    """The run-metrics artifact: rows in/out, imputed share, validation loss, model version, durations."""
    ingest, validate, fill, windows, train = (summaries[k] for k in ("ingest", "validate", "gapfill", "windows",
                                                                      "train"))
    durations = {name: summaries[name].duration_s for name in summaries} | {"publish": published.duration_s}
    lines = [
        f"# Run {published.run_date} (as-of {validate.as_of})",
        "",
        "| metric | value |",
        "|---|---|",
        f"| files new / already ingested / rejected | {ingest.files_new} / {ingest.files_already_ingested} / "
        f"{len(ingest.files_rejected)} |",
        f"| rows ingested this run | {ingest.rows_new} |",
        f"| rows checked by validation / quarantined | {validate.rows_checked} / {validate.rows_quarantined} |",
        f"| mode (validate / gap-fill / windows) | {validate.mode} / {fill.mode} / "
        f"{windows.mode}"
        + (f" (on the run of {validate.base_run_date}; {validate.series_rebuilt} series rebuilt)"
           if validate.base_run_date else f" ({validate.full_reason or 'full'})") + " |",
        f"| series forecast / by model / by its seasonal base / by seasonal-naive fallback | "
        f"{published.series} / {published.series_by_model} / {published.series_by_base} / "
        f"{published.series - published.series_by_model - published.series_by_base} |",
        f"| series cut after a gap over max_gap (earlier rows set aside) | {fill.series_cut_at_gap} "
        f"({fill.rows_set_aside} rows) |",
        f"| series with a gap over max_gap filled (short beside the history before it) | "
        f"{fill.series_bridged_gap} |",
        f"| imputed share | {100 * fill.imputed_share:.2f}% ({fill.imputed} points) |",
        f"| windows train / validation | {windows.train_windows} / {windows.val_windows} |",
        f"| trained version | {train.model_version or 'none (too little history to train)'}"
        f"{(' (warm start)' if train.warm_start else ' (full retrain)') if train.model_version else ''} |",
        f"| published by | {published.model_version} |",
        f"| decision | {train.decision} |",
        f"| device | {train.device} |",
        f"| epochs (best) | {_epochs(train)} |",
        f"| validation loss (pinball, scaled) | {_number(train.val_loss, 4)} |",
        f"| interval coverage on validation (calibrated) | {_number(train.interval_val_coverage, 3)} |",
        f"| explanations (validation windows, seconds) | {_explained(summaries.get('explain'))} |",
        f"| forecast rows out | {published.rows} |",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in durations.items()],
    ]
    return "\n".join(lines)


def _epochs(train: Trained) -> str:
    if train.best_epoch is None and train.epochs_run:  # an ensemble: each network stopped at its own best
        return f"{train.epochs_run} over the ensemble's networks"
    return f"{train.epochs_run} ({train.best_epoch})"


def _explained(explained: Explained | None) -> str:
    if explained is None or explained.explanation is None:
        return f"none ({explained.note})" if explained is not None else "none"
    measured = explained.explanation
    earlier = ", measured by an earlier run of this version" if explained.reused else ""
    return f"{measured['windows']} windows, {measured['seconds']:.2f} s{earlier}"


def importance_rows(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """The feature-importance table: one row per input group, then one per lookback block."""
    rows = [{"measure": "shuffled input group", "name": c["name"], "mase_increase": round(c["mase"], 4),
             "spread": round(c["mase_spread"], 4), "pinball_increase": round(c["pinball"], 5),
             "steps_back": ""} for c in explanation["channels"]]
    rows += [{"measure": "hidden lookback block", "name": b["name"], "mase_increase": round(b["mase"], 4),
              "spread": "", "pinball_increase": "", "steps_back": f"{b['steps_back'][0]}-{b['steps_back'][1]}"}
             for b in explanation["lookback_blocks"]]
    return rows


def accuracy_markdown(scored: Scored, interval_level: float) -> str:
    """The realised-accuracy artifact: rolling MASE and coverage over the last 7 and 28 publications,
    overall and the worst series, and whether the champion drifts."""

    def row(name: str, window: dict[str, Any]) -> str:
        if not window["points"]:
            return f"| {name} | 0 | | n/a | n/a | n/a | n/a |"
        return (f"| {name} | {window['run_dates']} (from {window['first_run_date']}) | {window['points']} | "
                f"{window['mase']:.3f} | {window['naive_mase']:.3f} | {window['coverage']:.2f} | "
                f"{window['worst_series']} ({window['worst_series_mase']:.3f}) |")

    status = (f"**Drift:** {scored.drift}. The next run retrains from scratch"
              + (" (notified)." if scored.notified else ".")) if scored.drift else \
        "No drift: the champion's realised accuracy is within its bounds (or too few points to judge)."
    return "\n".join([
        "# Realised accuracy",
        "",
        f"Earlier publications scored against what was observed since: {scored.points_new} new point(s), "
        f"{scored.points_restated} restated (a late or corrected actual), {scored.publications_updated} "
        "publication(s) updated.",
        "",
        f"| window | publications | points | MASE | seasonal naive MASE | coverage ({interval_level:.0%} target) "
        "| worst series (MASE) |",
        "|---|---|---|---|---|---|---|",
        row("last 7 run dates", scored.last_7),
        row("last 28 run dates", scored.last_28),
        "",
        status,
    ])


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def comparison_markdown(train: Trained) -> str:
    """The model-comparison artifact: holdout MASE of challenger, champion and seasonal naive."""
    holdout = train.holdout
    if holdout is None:  # nothing was trained this run
        return "\n".join(["# No challenger this run", "", f"{train.decision}.", "",
                          f"Publishing: {train.champion_version or FALLBACK_VERSION}."])

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    return "\n".join([
        f"# Challenger {train.model_version}: {'promoted' if train.promoted else 'not promoted'}",
        "",
        f"{train.decision}.",
        "",
        f"| model | holdout MASE ({holdout['windows']} windows) |",
        "|---|---|",
        f"| challenger {train.model_version} | {fmt(holdout['challenger_mase'])} |",
        f"| champion before this run | {fmt(holdout['champion_mase'])} |",
        f"| seasonal naive | {fmt(holdout['seasonal_naive_mase'])} |",
        "",
        f"Publishing: {train.champion_version or FALLBACK_VERSION}.",
    ])
