"""The one settings object: its reference in docs/ is generated from it, and the precedence of its sources."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from forecasting.settings import PROJECT_ROOT, Settings, load_settings, settings_reference


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """No LSTM_FORECAST_* variable and no config file from the machine running the tests."""
    import os

    for name in [name for name in os.environ if name.startswith("LSTM_FORECAST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_the_settings_reference_in_docs_is_generated_from_the_settings():
    written = (PROJECT_ROOT / "docs" / "settings.md").read_text()
    assert written == settings_reference(), ("docs/settings.md is out of step with forecasting/settings.py: "
                                             "regenerate it with `python -m forecasting.settings > docs/settings.md`")


def test_every_setting_is_documented():
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undocumented


def test_sources_take_precedence_defaults_then_file_then_environment_then_parameters(clean_environment, tmp_path):
    assert load_settings().units == 32 and load_settings().layers == 2  # defaults
    (tmp_path / "lstm-forecast.toml").write_text("units = 16\nlayers = 3\n")
    assert (load_settings().units, load_settings().layers) == (16, 3)  # the file in the working directory
    clean_environment.setenv("LSTM_FORECAST_UNITS", "24")
    assert (load_settings().units, load_settings().layers) == (24, 3)  # the environment beats the file
    assert load_settings(units=8).units == 8  # a flow parameter or CLI option beats both
    assert load_settings(units=None).units == 24  # an option left unset overrides nothing


def test_the_config_file_can_be_named_and_a_missing_one_is_an_error(clean_environment, tmp_path):
    named = tmp_path / "elsewhere.toml"
    named.write_text('fill_method = "seasonal"\n')
    clean_environment.setenv("LSTM_FORECAST_CONFIG", str(named))
    assert load_settings().fill_method == "seasonal"
    clean_environment.setenv("LSTM_FORECAST_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_settings()


def test_a_bad_value_names_the_setting(clean_environment):
    clean_environment.setenv("LSTM_FORECAST_DROPOUT", "1.5")
    with pytest.raises(ValidationError, match="dropout"):
        load_settings()
