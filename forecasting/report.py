"""The per-run HTML report: one self-contained page a person opens from the Prefect UI's link artifact.

`<data-dir>/reports/run_date=YYYY-MM-DD/report.html` (written by stores/reports.py), replaced by a rerun of
the date. For each series (or, with more than `MAX_PLOTS` series, the `WORST` least certain ones plus a
seeded sample of the rest) an inline SVG plot of recent history, the forecast and its interval, with
imputed points marked; then the validation, model and run summaries. Plain HTML and SVG, no scripts and nothing fetched from anywhere,
so it opens offline, from object storage or as an email attachment. Every text from the data is escaped.
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import IMPUTED, SERIES_ID, STEP, TIMESTAMP, VALUE, YHAT, YHAT_LOWER, YHAT_UPPER

MAX_PLOTS, WORST = 12, 6
WIDTH, HEIGHT, PAD = 680, 220, 48
HISTORY_HORIZONS = 4  # history shown: this many horizons back from the origin
COLOURS = {"history": "#1f4e79", "imputed": "#e07b00", "forecast": "#c0392b", "band": "#f1948a",
           "grid": "#d9d9d9", "text": "#333333"}


def pick_series(forecasts: pd.DataFrame, seed: int = 0) -> tuple[list[str], str]:
    """Which series to plot, and how they were chosen (said on the page)."""
    ids = sorted(forecasts[SERIES_ID].astype(str).unique())
    if len(ids) <= MAX_PLOTS:
        return ids, f"all {len(ids)} series"
    # Least certain first: interval width relative to the forecast level, averaged over the horizon.
    width = (forecasts[YHAT_UPPER] - forecasts[YHAT_LOWER]) / forecasts[YHAT].abs().clip(lower=1e-9)
    ranked = width.groupby(forecasts[SERIES_ID].astype(str)).mean().sort_values(ascending=False)
    worst = list(ranked.index[:WORST])
    rest = sorted(set(ids) - set(worst))
    sample = sorted(np.random.default_rng(seed).choice(rest, size=MAX_PLOTS - WORST, replace=False))
    return worst + sample, (f"the {WORST} series with the widest relative intervals, then a sample of "
                            f"{MAX_PLOTS - WORST} of the other {len(rest)}")


def axis_number(value: float) -> str:
    """Readable axis labels: 17,280 rather than 1.728e+04; small values keep 4 significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def series_svg(history: pd.DataFrame, forecast: pd.DataFrame, title: str) -> str:
    """An SVG line chart: history (imputed points marked), forecast median, interval band, origin line."""
    history = history.sort_values(TIMESTAMP)
    forecast = forecast.sort_values(STEP)
    times = pd.concat([history[TIMESTAMP], forecast[TIMESTAMP]])
    values = pd.concat([history[VALUE], forecast[YHAT_LOWER], forecast[YHAT_UPPER], forecast[YHAT]])
    t0, t1 = times.min().value, times.max().value
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 1.0, high + 1.0

    def x(stamps: pd.Series) -> np.ndarray:
        return PAD + (stamps.map(lambda t: t.value).to_numpy(dtype="float64") - t0) / max(t1 - t0, 1) * (WIDTH - 2 * PAD)

    def y(numbers: pd.Series) -> np.ndarray:
        return HEIGHT - PAD + (numbers.to_numpy(dtype="float64") - low) / (high - low) * (2 * PAD - HEIGHT)

    def points(xs: np.ndarray, ys: np.ndarray) -> str:
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))

    fx = x(forecast[TIMESTAMP])
    band = points(np.concatenate([fx, fx[::-1]]),
                  np.concatenate([y(forecast[YHAT_UPPER]), y(forecast[YHAT_LOWER])[::-1]]))
    hx, hy = x(history[TIMESTAMP]), y(history[VALUE])
    imputed = history[IMPUTED].to_numpy(dtype=bool) if IMPUTED in history else np.zeros(len(history), bool)
    origin = hx[-1] if len(hx) else PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        *[f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{v:.1f}" y2="{v:.1f}" stroke="{COLOURS["grid"]}"/>'
          for v in np.linspace(PAD, HEIGHT - PAD, 5)],
        f'<polygon points="{band}" fill="{COLOURS["band"]}" fill-opacity="0.45" stroke="none"/>',
        f'<polyline points="{points(hx, hy)}" fill="none" stroke="{COLOURS["history"]}" stroke-width="1.6"/>',
        f'<polyline points="{points(fx, y(forecast[YHAT]))}" fill="none" stroke="{COLOURS["forecast"]}" '
        'stroke-width="2"/>',
        f'<line x1="{origin:.1f}" x2="{origin:.1f}" y1="{PAD}" y2="{HEIGHT - PAD}" stroke="{COLOURS["text"]}" '
        'stroke-dasharray="4 3"/>',
        *[f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.2" fill="{COLOURS["imputed"]}"><title>imputed</title></circle>'
          for a, b in zip(hx[imputed], hy[imputed])],
        f'<text x="{PAD}" y="{PAD - 14}" font-size="13" fill="{COLOURS["text"]}">{html.escape(title)}</text>',
        f'<text x="4" y="{PAD + 4}" font-size="10" fill="{COLOURS["text"]}">{axis_number(high)}</text>',
        f'<text x="4" y="{HEIGHT - PAD + 4}" font-size="10" fill="{COLOURS["text"]}">{axis_number(low)}</text>',
        f'<text x="{PAD}" y="{HEIGHT - PAD + 18}" font-size="10" fill="{COLOURS["text"]}">'
        f'{times.min():%Y-%m-%d}</text>',
        f'<text x="{origin:.1f}" y="{HEIGHT - PAD + 18}" font-size="10" text-anchor="middle" '
        f'fill="{COLOURS["text"]}">origin</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 18}" font-size="10" text-anchor="end" '
        f'fill="{COLOURS["text"]}">{times.max():%Y-%m-%d}</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(run_date: date, clean: pd.DataFrame, forecasts: pd.DataFrame, quarantined: pd.DataFrame,
           summaries: dict[str, Any], published: Any, interval_level: float) -> str:
    """The whole page."""
    chosen, how = pick_series(forecasts)
    horizon = int(forecasts[STEP].max()) if not forecasts.empty else 1
    clean = clean.assign(**{SERIES_ID: clean[SERIES_ID].astype(str)})
    plots = []
    for series in chosen:
        history = clean[clean[SERIES_ID] == series].tail(HISTORY_HORIZONS * horizon)
        future = forecasts[forecasts[SERIES_ID].astype(str) == series]
        model = future["model_version"].iloc[0] if "model_version" in future and len(future) else ""
        plots.append(f'<figure>{series_svg(history, future, f"{series}  ({model})")}</figure>')
    validate, train = summaries["validate"], summaries["train"]
    reasons = quarantined["reason"].value_counts().head(10) if len(quarantined) else pd.Series(dtype=int)
    holdout = train.holdout or {}
    challenger = "challenger " + str(train.model_version or "(none trained)")
    model_rows = [(challenger, holdout.get("challenger_mase")),
                  ("champion before this run", holdout.get("champion_mase")),
                  ("seasonal naive", holdout.get("seasonal_naive_mase"))]
    page = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lstm-forecast run {run_date.isoformat()}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1500px}"
        "figure{display:inline-block;margin:0.4em;border:1px solid #ddd}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        ".key span{display:inline-block;width:1em;height:0.7em;margin:0 0.3em 0 1em}</style></head><body>",
        f"<h1>Forecasts of {run_date.isoformat()}</h1>",
        f"<p>As-of {html.escape(str(validate.as_of))}; {published.rows} forecast rows for "
        f"{published.series} series, published by {html.escape(str(published.model_version))}. "
        f"Plotted: {html.escape(how)}.</p>",
        '<p class="key"><span style="background:#1f4e79"></span>history<span style="background:#e07b00"></span>'
        'imputed point<span style="background:#c0392b"></span>forecast (median)'
        f'<span style="background:#f1948a"></span>{int(round(100 * interval_level))}% '
        "interval (calibrated)</p>",
        *plots,
        "<h2>Validation</h2>",
        table([("rows checked", validate.rows_checked), ("rows quarantined", validate.rows_quarantined),
               ("frequency", validate.frequency)], ("", "")),
        table([(reason, count) for reason, count in reasons.items()], ("quarantine reason (top 10)", "rows"))
        if len(reasons) else "<p>Nothing quarantined.</p>",
        "<h2>Model</h2>",
        f"<p>{html.escape(str(train.decision))}</p>",
        table([(name, "n/a" if score is None else f"{score:.4f}") for name, score in model_rows],
              ("model", f"holdout MASE ({holdout.get('windows', '?')} windows)")),
        "<h2>Run</h2>",
        table([(name, f"{summary.duration_s:.2f}") for name, summary in summaries.items()]
              + [("publish", f"{published.duration_s:.2f}")], ("stage", "seconds")),
        "</body></html>",
    ]
    return "\n".join(page)


