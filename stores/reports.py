"""The per-run HTML report's place in the store: `<data-dir>/reports/run_date=YYYY-MM-DD/report.html`,
replaced atomically by a rerun of the date (forecasting/report.py renders it)."""

from __future__ import annotations

from datetime import date
from typing import Any

from stores import files


def report_path(data_dir: Any, run_date: date) -> Any:
    return files.partition_dir(files.as_path(data_dir) / "reports", run_date) / "report.html"


def write_report(data_dir: Any, run_date: date, page: str) -> Any:
    """Write (replace) the run date's report atomically; returns its path."""
    target = report_path(data_dir, run_date)
    with files.atomic_path(target) as staged:
        staged.write_text(page, encoding="utf-8")
    return target
