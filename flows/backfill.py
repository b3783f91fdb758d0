"""The backfill flow: the daily flow once per as-of over a date range, oldest first, resumable.

Each as-of is a subflow run of `daily-forecast` (named `daily-asof-<date>`, visible in the UI under the
backfill run). An as-of whose forecasts are already published (both stores) is skipped, so a backfill
that stopped half way picks up where it left off; `force` reruns them all (a rerun reuses the model
trained on the same data, so it publishes identical rows). The range is walked in order because each
day's champion is the next day's starting point.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows.daily import daily_forecast
from flows.hooks import report_failure
from forecasting.errors import UsageError
from forecasting.settings import load_settings
from stores.forecasts import published_run_dates
from stores.forecasts import resolve_database_url


def as_of_dates(start: str, end: str, every: str) -> list[pd.Timestamp]:
    """Every `every` period from start to end inclusive, as UTC timestamps; errors name the bad argument."""
    try:
        first, last = pd.Timestamp(start), pd.Timestamp(end)
    except ValueError as exc:
        raise UsageError(f"backfill --start/--end must be ISO-8601 dates: {exc}") from None
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    last = last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")
    if last < first:
        raise UsageError(f"backfill --end {end} is before --start {start}")
    try:
        return list(pd.date_range(first, last, freq=every))
    except ValueError as exc:
        raise UsageError(f"backfill --every {every!r} is not a pandas frequency such as D, 7D or h: {exc}") from None


@flow(name="backfill", flow_run_name="backfill-{start}-to-{end}", on_failure=[report_failure])
def backfill_flow(start: str, end: str, every: str = "D", input_path: str | None = None,
                  data_dir: str | None = None, force: bool = False, horizon: int | None = None,
                  lookback: int | None = None, max_epochs: int | None = None) -> dict[str, Any]:
    """Run the daily flow for each as-of from `start` to `end` (every `every`), skipping published ones."""
    log = get_run_logger()
    settings = load_settings(input_path=input_path, data_dir=data_dir)
    dates = as_of_dates(start, end, every)
    done = set() if force else published_run_dates(settings.data_dir, resolve_database_url(settings))
    ran, skipped = [], []
    for number, as_of in enumerate(dates, start=1):
        if as_of.date().isoformat() in done:
            skipped.append(as_of.date().isoformat())
            log.info("backfill %d/%d: as-of %s already published, skipped", number, len(dates), as_of.date())
            continue
        log.info("backfill %d/%d: as-of %s", number, len(dates), as_of.isoformat())
        result = daily_forecast(input_path=input_path, data_dir=data_dir, as_of=as_of.isoformat(),
                                horizon=horizon, lookback=lookback, max_epochs=max_epochs)
        ran.append(result["published"].run_date)
    log.info("Backfill done: %d as-of(s) run, %d already published", len(ran), len(skipped))
    return {"ran": ran, "skipped": skipped}
