"""The per-run HTML report: one self-contained page a person opens from the Prefect UI's link artifact.

`<data-dir>/reports/run_date=YYYY-MM-DD/report.html` (written by stores/reports.py), replaced by a rerun of
the date. For each series (or, with more than `MAX_PLOTS` series, the `WORST` least certain ones plus a
seeded sample of the rest) an inline SVG plot of recent history, the forecast and its interval, with
imputed points marked; then the validation and model summaries, what the model leans on (its
explanations: a bar chart of input groups, a lookback x horizon heatmap) and the run's timings. Plain
HTML and SVG, no scripts and nothing fetched from anywhere, so it opens offline, from object storage or
as an email attachment. Every text from the data is escaped.
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


class _Plot:
    """Where timestamps and values land on a WIDTH x HEIGHT chart, both ranges padded by PAD."""

    def __init__(self, times: pd.Series, values: pd.Series):
        self.t0, self.t1 = times.min().value, times.max().value
        self.low, self.high = float(values.min()), float(values.max())
        if self.high <= self.low:
            self.low, self.high = self.low - 1.0, self.high + 1.0

    def x(self, stamps: pd.Series) -> np.ndarray:
        return PAD + (stamps.map(lambda t: t.value).to_numpy("float64") - self.t0) / max(self.t1 - self.t0, 1) \
            * (WIDTH - 2 * PAD)

    def y(self, values: pd.Series) -> np.ndarray:
        return HEIGHT - PAD + (values.to_numpy("float64") - self.low) / (self.high - self.low) * (2 * PAD - HEIGHT)

    def band(self, forecast: pd.DataFrame) -> str:
        """The interval of forecast rows (sorted by time) as a polygon's points."""
        fx = self.x(forecast[TIMESTAMP])
        return _points(np.concatenate([fx, fx[::-1]]),
                       np.concatenate([self.y(forecast[YHAT_UPPER]), self.y(forecast[YHAT_LOWER])[::-1]]))


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))


def series_svg(history: pd.DataFrame, forecast: pd.DataFrame, title: str) -> str:
    """An SVG line chart: history (imputed points marked), forecast median, interval band, origin line."""
    history = history.sort_values(TIMESTAMP)
    forecast = forecast.sort_values(STEP)
    times = pd.concat([history[TIMESTAMP], forecast[TIMESTAMP]])
    plot = _Plot(times, pd.concat([history[VALUE], forecast[YHAT_LOWER], forecast[YHAT_UPPER], forecast[YHAT]]))
    x, y, points, low, high = plot.x, plot.y, _points, plot.low, plot.high
    fx = x(forecast[TIMESTAMP])
    band = plot.band(forecast)
    hx, hy = x(history[TIMESTAMP]), y(history[VALUE])
    imputed = history[IMPUTED].to_numpy(dtype=bool) if IMPUTED in history else np.zeros(len(history), bool)
    origin = hx[-1] if len(hx) else PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="series" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
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


def importance_svg(channels: list[dict[str, Any]]) -> str:
    """A horizontal bar chart: the MASE increase when each input group is shuffled (zero line marked)."""
    label_width, bar_width, row = 170, 380, 24
    values = np.array([c["mase"] if np.isfinite(c["mase"]) else 0.0 for c in channels], dtype="float64")
    low, high = min(0.0, float(values.min(initial=0.0))), max(0.0, float(values.max(initial=0.0)))
    span = (high - low) or 1.0
    zero = label_width + (0.0 - low) / span * bar_width
    height = row * len(channels) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="importance" width="{label_width + bar_width + 90}" '
             f'height="{height}" role="img" aria-label="channel importance">',
             '<rect width="100%" height="100%" fill="white"/>']
    for i, (channel, value) in enumerate(zip(channels, values)):
        y = 10 + i * row
        start = label_width + (min(value, 0.0) - low) / span * bar_width
        width = abs(value) / span * bar_width
        parts += [f'<text x="{label_width - 6}" y="{y + 14}" font-size="12" text-anchor="end" '
                  f'fill="{COLOURS["text"]}">{html.escape(str(channel["name"]))}</text>',
                  f'<rect x="{start:.1f}" y="{y + 3}" width="{max(width, 0.5):.1f}" height="{row - 8}" '
                  f'fill="{COLOURS["history"] if value >= 0 else COLOURS["imputed"]}"/>',
                  f'<text x="{start + max(width, 0.5) + 4:.1f}" y="{y + 14}" font-size="11" '
                  f'fill="{COLOURS["text"]}">{value:+.3f}</text>']
    parts += [f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="6" y2="{height - 16}" stroke="{COLOURS["text"]}"/>',
              f'<text x="{zero:.1f}" y="{height - 4}" font-size="10" text-anchor="middle" '
              f'fill="{COLOURS["text"]}">0 (MASE increase when shuffled)</text>', "</svg>"]
    return "\n".join(parts)


def lookback_heatmap_svg(blocks: list[dict[str, Any]], horizon: int) -> str:
    """A lookback block x horizon step heatmap of the MASE increase when the block is hidden (darker red:
    leaned on more; blue: hiding it helped)."""
    label_width, cell_height = 240, 24
    cell_width = max(6, min(28, 560 // max(horizon, 1)))
    grid = np.array([[v if v is not None and np.isfinite(v) else 0.0 for v in b["mase_by_step"]] for b in blocks],
                    dtype="float64").reshape(len(blocks), -1)
    top = float(np.abs(grid).max(initial=0.0)) or 1.0
    width, height = label_width + cell_width * grid.shape[1] + 20, cell_height * len(blocks) + 52
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" role="img" '
             'aria-label="lookback importance by horizon step">', '<rect width="100%" height="100%" fill="white"/>']
    for i, block in enumerate(blocks):
        y = 8 + i * cell_height
        first, last = block["steps_back"]
        label = f"{block['name']} ({first}" + (f"-{last}" if last != first else "") + " back)"
        parts.append(f'<text x="{label_width - 6}" y="{y + 16}" font-size="11" text-anchor="end" '
                     f'fill="{COLOURS["text"]}">{html.escape(label)}</text>')
        for step, value in enumerate(grid[i]):
            share = min(1.0, abs(value) / top)
            fade = int(round(255 * (1 - share)))
            colour = f"rgb(255,{fade},{fade})" if value >= 0 else f"rgb({fade},{fade},255)"
            parts.append(f'<rect x="{label_width + step * cell_width}" y="{y}" width="{cell_width - 1}" '
                         f'height="{cell_height - 1}" fill="{colour}"><title>step {step + 1}: {value:+.4f}'
                         '</title></rect>')
    axis = height - 32
    parts += [f'<text x="{label_width}" y="{axis}" font-size="10" fill="{COLOURS["text"]}">horizon step 1</text>',
              f'<text x="{width - 20}" y="{axis}" font-size="10" text-anchor="end" fill="{COLOURS["text"]}">'
              f'{grid.shape[1]}</text>',
              f'<text x="{label_width}" y="{height - 8}" font-size="10" fill="{COLOURS["text"]}">darkest cell: '
              f'{top:.3f} MASE (red: hiding the block hurts, blue: hiding it helped)</text>', "</svg>"]
    return "\n".join(parts)


def explanation_section(explained: Any) -> list[str]:
    """The report's "What the model leans on" section (the explain stage's result, or why there is none)."""
    if explained is None or explained.explanation is None:
        note = explained.note if explained is not None else "not measured"
        return ["<h2>What the model leans on</h2>", f"<p>No explanation: {html.escape(note)}.</p>"]
    e = explained.explanation
    return [
        "<h2>What the model leans on</h2>",
        f"<p>Model {html.escape(str(e['version']))} on {e['windows']} of its validation windows (seed {e['seed']}; "
        f"MASE there {e['baseline']['mase']:.3f}). Bars: how much MASE rises when an input group is shuffled "
        "across windows (about zero: not used). Heatmap: how much it rises per horizon step when a block of the "
        "lookback is hidden. SHAP: " + html.escape(str(e["shap"])) + ".</p>",
        f"<figure>{importance_svg(e['channels'])}</figure>",
        f"<figure>{lookback_heatmap_svg(e['lookback_blocks'], int(e['horizon']))}</figure>",
    ]


def realised_svg(rows: pd.DataFrame, title: str) -> str:
    """What happened (a line through the observed values) against each earlier publication's forecast of
    it (one thin line per publication run date, its interval as a faint band)."""
    rows = rows.sort_values(["run_date", STEP])
    plot = _Plot(rows[TIMESTAMP], pd.concat([rows["y"], rows[YHAT], rows[YHAT_LOWER], rows[YHAT_UPPER]]))
    x, y, points, low, high = plot.x, plot.y, _points, plot.low, plot.high

    actual = rows.drop_duplicates(TIMESTAMP).sort_values(TIMESTAMP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="realised" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for _, publication in rows.groupby("run_date", sort=True):
        fx = x(publication[TIMESTAMP])
        parts += [f'<polygon points="{plot.band(publication)}" fill="{COLOURS["band"]}" fill-opacity="0.12" '
                  'stroke="none"/>',
                  f'<polyline points="{points(fx, y(publication[YHAT]))}" fill="none" '
                  f'stroke="{COLOURS["forecast"]}" stroke-opacity="0.6" stroke-width="1"/>']
    parts += [f'<polyline points="{points(x(actual[TIMESTAMP]), y(actual["y"]))}" fill="none" '
              f'stroke="{COLOURS["history"]}" stroke-width="2"/>',
              f'<text x="{PAD}" y="{PAD - 14}" font-size="13" fill="{COLOURS["text"]}">{html.escape(title)}</text>',
              f'<text x="4" y="{PAD + 4}" font-size="10" fill="{COLOURS["text"]}">{axis_number(high)}</text>',
              f'<text x="4" y="{HEIGHT - PAD + 4}" font-size="10" fill="{COLOURS["text"]}">{axis_number(low)}</text>',
              f'<text x="{PAD}" y="{HEIGHT - PAD + 18}" font-size="10" fill="{COLOURS["text"]}">'
              f'{rows[TIMESTAMP].min():%Y-%m-%d}</text>',
              f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 18}" font-size="10" text-anchor="end" '
              f'fill="{COLOURS["text"]}">{rows[TIMESTAMP].max():%Y-%m-%d}</text>', "</svg>"]
    return "\n".join(parts)


def realised_section(scored: Any, realised: pd.DataFrame | None) -> list[str]:
    """The report's "Recent forecasts against what happened" section: the rolling numbers, then plots of the
    series that did worst over the latest publications."""
    head = ["<h2>Recent forecasts against what happened</h2>"]
    if scored is None or realised is None or realised.empty:
        return head + ["<p>No earlier forecast has been observed yet.</p>"]
    rows = [(name, w["run_dates"], w["points"], *(f"{w[k]:.3f}" if w["points"] else "n/a"
                                                 for k in ("mase", "naive_mase", "coverage")))
            for name, w in (("last 7 run dates", scored.last_7), ("last 28 run dates", scored.last_28))]
    realised = realised.assign(**{SERIES_ID: realised[SERIES_ID].astype(str)})
    worst = realised.groupby(SERIES_ID)["scaled_error"].mean().sort_values(ascending=False).index[:WORST]
    plots = [f'<figure>{realised_svg(realised[realised[SERIES_ID] == series], f"{series} (MASE {mase:.2f})")}'
             "</figure>" for series, mase in realised.groupby(SERIES_ID)["scaled_error"].mean()[worst].items()]
    drift = f"<p><strong>Drift:</strong> {html.escape(scored.drift)}.</p>" if scored.drift else ""
    return head + [table(rows, ("window", "publications", "points", "MASE", "seasonal naive MASE", "coverage")),
                   drift, f"<p>The {len(plots)} series with the highest realised MASE over the latest "
                   f"{realised['run_date'].nunique()} scored publications: what happened (blue) against each "
                   "publication's forecast (red, interval shaded).</p>", *plots]


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(run_date: date, clean: pd.DataFrame, forecasts: pd.DataFrame, quarantined: pd.DataFrame,
           summaries: dict[str, Any], published: Any, interval_level: float,
           realised: pd.DataFrame | None = None) -> str:
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
        *explanation_section(summaries.get("explain")),
        *realised_section(summaries.get("accuracy"), realised),
        "<h2>Run</h2>",
        table([(name, f"{summary.duration_s:.2f}") for name, summary in summaries.items()]
              + [("publish", f"{published.duration_s:.2f}")], ("stage", "seconds")),
        "</body></html>",
    ]
    return "\n".join(page)


