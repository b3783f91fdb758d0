"""Every deployment entrypoint imports and names the flow; schedules are daily with an explicit zone."""

from __future__ import annotations

import yaml
from prefect.flows import load_flow_from_entrypoint

from forecasting.settings import PROJECT_ROOT

PREFECT_YAML = PROJECT_ROOT / "deployments" / "prefect.yaml"


def deployments():
    return yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


def test_every_entrypoint_loads(monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)  # entrypoints are relative to the project root, as for `prefect deploy`
    names = []
    for deployment in deployments():
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        names.append(flow.name)
    assert names == ["daily-forecast", "tune"]


def test_schedules_are_daily_and_weekly_crons_with_a_timezone():
    expected = {"daily": ["*", "*", "*"], "weekly": ["*", "*", "0"]}  # day of month, month, day of week
    for deployment in deployments():
        schedules = deployment["schedules"]
        assert schedules, deployment["name"]
        for schedule in schedules:
            fields = schedule["cron"].split()
            assert len(fields) == 5 and fields[2:] == expected[deployment["name"]]
            assert schedule["timezone"]


def test_served_variant_builds_a_scheduled_deployment():
    from prefect.schedules import Cron

    from flows.cli import DEFAULT_CRON, DEFAULT_TIMEZONE
    from flows.daily import daily_forecast

    deployment = daily_forecast.to_deployment(name="daily",
                                              schedules=[Cron(DEFAULT_CRON, timezone=DEFAULT_TIMEZONE)])
    assert deployment.flow_name == "daily-forecast"
    assert deployment.schedules[0].schedule.cron == DEFAULT_CRON
    assert deployment.schedules[0].schedule.timezone == DEFAULT_TIMEZONE
