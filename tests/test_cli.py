"""The `lstm-forecast` command line: exit codes and one-paragraph errors, never a bare traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flows.cli import build_parser, main
from tasks.settings import PROJECT_ROOT


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    commands = build_parser()._subparsers._group_actions[0]
    described = {action.dest: action.help for action in commands._choices_actions}
    assert set(described) == {"run", "backtest", "tune", "serve", "backfill", "setup"}
    for command, text in described.items():
        assert text and text[:30] in " ".join(out.split()), command  # listed in --help with its description
    run_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    for option in ("--input", "--data-dir", "--as-of", "--horizon", "--lookback", "--max-epochs"):
        assert option in run_help


def test_invalid_setting_is_reported_before_anything_runs(capsys, tmp_path):
    assert main(["run", "--horizon", "0", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lstm-forecast: error: invalid settings: horizon")
    assert "Traceback" not in err and not (tmp_path / "raw").exists()


def test_failed_run_exits_non_zero_with_one_paragraph(prefect_server, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--input", str(tmp_path / "missing"),
                           "--data-dir", str(tmp_path / "store")], env=env, capture_output=True, text=True,
                          timeout=300, cwd=PROJECT_ROOT)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lstm-forecast: error: input path") and "does not exist" in last


def test_the_whole_bad_input_corpus_runs_without_a_traceback(prefect_server, tmp_path):
    from tasks.forecast_store import read_parquet_forecasts
    from tests.corpus.cases import CASES

    inbox = tmp_path / "corpus"
    inbox.mkdir()
    for name, content, _ in CASES.values():
        (inbox / name).write_bytes(content)
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--input", str(inbox), "--data-dir",
                           str(tmp_path / "store"), "--lookback", "14", "--horizon", "7", "--max-epochs", "1"],
                          env=env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    forecast_ids = set(read_parquet_forecasts(tmp_path / "store")["series_id"])
    good = {row.split(",")[0] for _, content, _ in CASES.values()
            for row in content.decode("utf-8", "ignore").splitlines() if row.startswith("good-")}
    assert good <= forecast_ids  # every good series in every file was forecast
    assert "../../etc/passwd" in forecast_ids and not (tmp_path / "etc").exists()
