"""The per-run HTML report: content checks, and the page loaded in a real headless Chromium (Debian's
`chromium`, which `.ci/run` installs when missing): it loads, every plot renders, no console errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from forecasting.report import MAX_PLOTS, render
from forecasting.results import Explained, Published, Scored, Trained, Validated
from stores.reports import write_report


# What forecasting/explain.py stores for a version (shape only; its numbers are tested in test_explain.py).
EXPLANATION = {
    "version": "v1", "windows": 64, "seed": 0, "repeats": 3, "horizon": 7, "seconds": 0.2,
    "baseline": {"pinball": 0.2, "mase": 0.9}, "shap": "not computed: the optional shap package is not installed",
    "channels": [{"name": "target history", "pinball": 0.3, "mase": 1.2, "mase_spread": 0.05,
                  "mase_by_step": [1.2] * 7},
                 {"name": "covariate <temp>", "pinball": -0.001, "mase": -0.01, "mase_spread": 0.01,
                  "mase_by_step": [-0.01] * 7}],
    "lookback_blocks": [{"name": "most recent step", "steps_back": [1, 1], "mase": 0.05,
                         "mase_by_step": [0.1, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02]},
                        {"name": "older", "steps_back": [2, 14], "mase": -0.002, "mase_by_step": [-0.002] * 7}],
}


def panel(n_series: int, days: int = 60, horizon: int = 7):
    stamps = pd.date_range("2016-11-01", periods=days, freq="D", tz="UTC")
    rng = np.random.default_rng(0)
    clean = pd.concat([pd.DataFrame({"series_id": f"s<{i}>&'x'", "timestamp": stamps,
                                     "value": 100 + 10 * np.sin(np.arange(days) / 3) + rng.normal(0, 2, days) + i,
                                     "imputed": np.arange(days) % 17 == 5}) for i in range(n_series)])
    future = pd.date_range(stamps[-1] + pd.Timedelta(days=1), periods=horizon, freq="D", tz="UTC")
    forecasts = pd.concat([pd.DataFrame({
        "series_id": f"s<{i}>&'x'", "origin": stamps[-1], "timestamp": future, "step": np.arange(1, horizon + 1),
        "yhat": 100.0 + i, "yhat_lower": 90.0 + i - (i % 5) * np.arange(horizon),
        "yhat_upper": 110.0 + i + (i % 5) * np.arange(horizon), "model_version": "v1", "run_id": "r"})
        for i in range(n_series)])
    summaries = {"validate": Validated(as_of="2016-12-30T00:00:00+00:00", run_date="2016-12-30", frequency="D",
                                       valid_path="", rows_checked=len(clean), mode="full", full_reason="first run",
                                       base_run_date=None, base_as_of=None, series_rebuilt=None,
                                       rows_valid=len(clean) - 2, rows_quarantined=2, series_valid=n_series,
                                       covariates=[], failed_expectations=[], duration_s=1.0),
                 "train": Trained(model_version="v1", model_path=None, device="CPU", promoted=True,
                                  champion_version="v1", warm_start=False, decision="promoted: beats seasonal naive",
                                  holdout={"challenger_mase": 0.8, "champion_mase": None, "seasonal_naive_mase": 1.0,
                                           "windows": 21}, interval_val_coverage=0.8, reused=False, epochs_run=3,
                                  best_epoch=2, val_loss=0.1, train_seconds=4.0, duration_s=5.0),
                 "explain": Explained(model_version="v1", path=None, explanation=EXPLANATION, reused=False, note="",
                                      duration_s=0.3)}
    published = Published(run_date="2016-12-30", rows=len(forecasts), series=n_series, series_by_model=n_series,
                          series_by_base=0, parquet_path="", model_version="v1", duration_s=0.5)
    quarantined = pd.DataFrame({"reason": ["day.csv row 3: value 'abc' is not a number"] * 2})
    return clean, forecasts, quarantined, summaries, published


def test_report_plots_every_series_and_escapes_ids():
    page = render(date(2016, 12, 30), *panel(3), interval_level=0.8)
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="series"') == 3 and "<figure>" in page
    assert "s&lt;0&gt;&amp;&#x27;x&#x27;" in page and "s<0>" not in page  # data never becomes markup
    assert page.count("<title>imputed</title>") == 3 * 2  # the last 28 days shown hold days 39 and 56
    assert "80% interval" in page and "not a number" in page and "0.8000" in page
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_many_series_show_the_least_certain_and_a_sample():
    page = render(date(2016, 12, 30), *panel(40), interval_level=0.8)
    assert page.count('class="series"') == MAX_PLOTS and "widest relative intervals" in page


def test_report_shows_what_the_model_leans_on_or_why_not():
    clean, forecasts, quarantined, summaries, published = panel(3)
    page = render(date(2016, 12, 30), clean, forecasts, quarantined, summaries, published, interval_level=0.8)
    assert page.count('class="importance"') == 1 and page.count('class="heatmap"') == 1
    assert "covariate &lt;temp&gt;" in page and "+1.200" in page and "-0.010" in page  # escaped, signed
    assert page.count("<title>step ") == 2 * 7  # one heatmap cell per block and horizon step
    assert "shap package is not installed" in page
    summaries["explain"] = Explained(model_version=None, path=None, explanation=None, reused=False,
                                     note="nothing was trained this run", duration_s=0.0)
    page = render(date(2016, 12, 30), clean, forecasts, quarantined, summaries, published, interval_level=0.8)
    assert 'class="importance"' not in page and "No explanation: nothing was trained this run." in page


def test_report_draws_earlier_forecasts_against_what_happened():
    clean, forecasts, quarantined, summaries, published = panel(8)
    page = render(date(2016, 12, 30), clean, forecasts, quarantined, summaries, published, interval_level=0.8)
    assert "No earlier forecast has been observed yet." in page  # the first run: nothing to score
    realised = pd.concat([pd.DataFrame({
        "series_id": f"s{i}", "run_date": day.date().isoformat(), "step": np.arange(1, 4),
        "timestamp": pd.date_range(day + pd.Timedelta(days=1), periods=3, freq="D"), "y": 100.0 + i,
        "yhat": 100.0 + 2 * i, "yhat_lower": 90.0, "yhat_upper": 110.0, "scaled_error": float(i)})
        for i in range(8) for day in pd.date_range("2016-12-20", periods=4, freq="D", tz="UTC")])
    window = {"run_dates": 4, "first_run_date": "2016-12-20", "points": 96, "mase": 3.5, "naive_mase": 1.2,
              "coverage": 0.6, "worst_series": "s7", "worst_series_mase": 7.0}
    summaries["accuracy"] = Scored(points_new=24, points_restated=0, publications_updated=4, last_7=window,
                                   last_28=window, drift="coverage 0.60 is outside 0.80 +/- 0.15", notified=False,
                                   duration_s=0.1)
    page = render(date(2016, 12, 30), clean, forecasts, quarantined, summaries, published, 0.8, realised)
    assert page.count('class="realised"') == 6  # the six worst series
    assert "s7 (MASE 7.00)" in page and "s1 (MASE" not in page
    assert "<strong>Drift:</strong> coverage 0.60 is outside" in page and "3.500" in page


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless Chromium here: `.ci/run` installs Debian's chromium (apt-get install chromium); "
                "install it to run this test")


def test_report_renders_in_headless_chromium(tmp_path):
    from websockets.sync.client import connect

    path = write_report(tmp_path, date(2016, 12, 30), render(date(2016, 12, 30), *panel(3), interval_level=0.8))
    browser = subprocess.Popen([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = browser.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = found.group(1) if found else None
        assert endpoint, "Chromium did not start its DevTools endpoint"
        with connect(endpoint, max_size=None) as socket:
            messages = Session(socket)
            target = messages.call("Target.createTarget", url="about:blank")["targetId"]
            session = messages.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                messages.call(f"{domain}.enable", session=session)
            messages.call("Page.navigate", session=session, url=path.resolve().as_uri())
            messages.wait_for("Page.loadEventFired", session)
            state = messages.call("Runtime.evaluate", session=session, returnByValue=True, expression="""
                JSON.stringify({
                  title: document.title,
                  plots: document.querySelectorAll('svg.series').length,
                  drawn: [...document.querySelectorAll('svg.series')].filter(s => {
                    const box = s.getBoundingClientRect();
                    return box.width > 100 && box.height > 100 && s.querySelector('polyline').getBBox().width > 10;
                  }).length,
                  charts: [...document.querySelectorAll('svg.importance, svg.heatmap')].filter(s => {
                    const box = s.getBoundingClientRect();
                    return box.width > 100 && box.height > 40 && s.querySelectorAll('rect').length > 2;
                  }).length,
                  images: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length
                })""")["result"]["value"]
        page = json.loads(state)
        assert page == {"title": "lstm-forecast run 2016-12-30", "plots": 3, "drawn": 3, "charts": 2, "images": 0}
        assert messages.errors == [], messages.errors
    finally:
        browser.kill()
        browser.wait()


class Session:
    """Minimal Chrome DevTools Protocol client: numbered calls, events kept, console errors collected."""

    def __init__(self, socket):
        self.socket, self.next_id, self.events, self.errors = socket, 0, [], []

    def _receive(self) -> dict:
        message = json.loads(self.socket.recv(timeout=30))
        method = message.get("method", "")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(str(params.get("args")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(params["entry"].get("text"))
        if method:
            self.events.append(message)
        return message

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.next_id += 1
        request = {"id": self.next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        self.socket.send(json.dumps(request))
        while True:
            message = self._receive()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, method: str, session: str) -> dict:
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            message = self._receive()
            if message.get("method") == method and message.get("sessionId") == session:
                return message
