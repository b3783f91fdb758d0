"""The `lstm-forecast` command line: exit codes and one-paragraph errors, never a bare traceback."""

from __future__ import annotations

import pytest

from flows.cli import build_parser, main
from tests.conftest import run_cli


def error_line(stderr: str) -> str:
    """The CLI's one error line (Prefect's workers may still log a line or two after it, at exit)."""
    lines = [line for line in stderr.splitlines() if line.startswith("lstm-forecast: error: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


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
    done = run_cli(prefect_server, "run", "--input", str(tmp_path / "missing"), "--data-dir",
                   str(tmp_path / "store"))
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    last = error_line(done.stderr)
    assert last.startswith("lstm-forecast: error: input path") and "does not exist" in last


def test_unusable_files_alone_end_in_one_line_naming_each_file_and_no_traceback(prefect_server, tmp_path):
    """Every kind of file the corpus rejects whole, plus a file of another type, with nothing usable
    beside them: one line per file while ingesting, then an error naming them all; no traceback on the
    console, and the failed state with the same message in the Prefect API."""
    import uuid

    from prefect import get_client

    from tests.corpus.cases import CASES

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rejected = [(name, outcome[1]) for name, content, outcome in CASES.values() if outcome[0] == "rejected"]
    for name, content, outcome in CASES.values():
        if outcome[0] == "rejected":
            (inbox / name).write_bytes(content)
    (inbox / "junk.bin").write_bytes(bytes(range(256)))
    done = run_cli(prefect_server, "run", "--input", str(inbox), "--data-dir", str(tmp_path / "store"))
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    last = error_line(done.stderr)
    assert last.startswith("lstm-forecast: error: no usable input: ")
    for name, reason in rejected:
        assert name in last and reason in last, (name, last)
        assert f"Rejected file '{name}'" in output  # its own line while ingesting
    assert "junk.bin is neither CSV nor Parquet" in last and "Ignored file 'junk.bin'" in output

    run_id = output.split("/runs/flow-run/")[1].split()[0]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(uuid.UUID(run_id)).state
    assert state.is_failed() and "no usable input: " in state.message and "junk.bin" in state.message


def test_debug_shows_the_traceback_of_an_expected_error(capsys, tmp_path, monkeypatch):
    from forecasting.errors import DEBUG_VARIABLE

    monkeypatch.setenv(DEBUG_VARIABLE, "0")  # restored (unset) after the test: --debug sets it for the process
    assert main(["backfill", "--debug", "--start", "2016-12-31", "--end", "2016-12-01",
                 "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("lstm-forecast: error: backfill --end")
    monkeypatch.setenv(DEBUG_VARIABLE, "0")
    assert main(["backfill", "--start", "2016-12-31", "--end", "2016-12-01", "--data-dir", str(tmp_path)]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_an_unexpected_error_keeps_its_traceback(capsys, monkeypatch):
    import flows.setup

    def broken(pool, slots):
        raise KeyError("a bug")

    monkeypatch.setattr(flows.setup, "setup_server", broken)
    assert main(["setup"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err
    assert err.strip().splitlines()[-1] == "lstm-forecast: error: 'a bug' (unexpected KeyError; traceback above)"


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs")  # no run: nothing to send
def test_prefect_run_logs_drop_the_traceback_of_expected_errors_only(monkeypatch):
    import logging

    from forecasting.errors import DEBUG_VARIABLE, PipelineError, quiet_expected_errors

    quiet_expected_errors()
    quiet_expected_errors()  # idempotent
    logger = logging.getLogger("prefect.task_runs")
    assert len([f for f in logger.filters if type(f).__name__ == "_WithoutTraceback"]) == 1
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        for error in (PipelineError("every series is stale"), KeyError("a bug")):
            try:
                raise error
            except Exception as exc:  # noqa: BLE001
                logger.error("Task run failed with exception: %r", exc, exc_info=True)
        monkeypatch.setenv(DEBUG_VARIABLE, "1")
        try:
            raise PipelineError("every series is stale")
        except PipelineError as exc:
            logger.error("Task run failed with exception: %r", exc, exc_info=True)
    finally:
        logger.removeHandler(handler)
    expected, unexpected, debugged = seen
    assert expected.exc_info is None and expected.getMessage() == "Task run failed: every series is stale"
    assert unexpected.exc_info is not None and "KeyError" in unexpected.getMessage()
    assert debugged.exc_info is not None


def test_the_whole_bad_input_corpus_runs_without_a_traceback(prefect_server, tmp_path):
    from stores.forecasts import read_parquet_forecasts
    from tests.corpus.cases import CASES

    inbox = tmp_path / "corpus"
    inbox.mkdir()
    for name, content, _ in CASES.values():
        (inbox / name).write_bytes(content)
    done = run_cli(prefect_server, "run", "--input", str(inbox), "--data-dir", str(tmp_path / "store"),
                   "--lookback", "14", "--horizon", "7", "--max-epochs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    forecast_ids = set(read_parquet_forecasts(tmp_path / "store")["series_id"])
    good = {row.split(",")[0] for _, content, _ in CASES.values()
            for row in content.decode("utf-8", "ignore").splitlines() if row.startswith("good-")}
    assert good <= forecast_ids  # every good series in every file was forecast
    assert "../../etc/passwd" in forecast_ids and not (tmp_path / "etc").exists()


def test_the_task_libraries_import_in_the_background_and_a_missing_one_is_left_to_its_task():
    import sys

    from flows.warmup import import_in_background

    sys.modules.pop("colorsys", None)
    thread = import_in_background(("no_such_library_for_lstm_forecast", "colorsys"))
    thread.join(timeout=60)
    assert not thread.is_alive() and thread.daemon
    assert "colorsys" in sys.modules and "no_such_library_for_lstm_forecast" not in sys.modules


def test_the_command_exits_with_its_code_after_the_exit_handlers_ran(tmp_path):
    """`run_and_exit` (the console script) skips the interpreter's teardown, not the exit handlers."""
    import subprocess
    import sys

    from forecasting.settings import PROJECT_ROOT

    script = ("import atexit, threading, time\n"
              "from flows.cli import run_and_exit\n"
              "atexit.register(print, 'exit handler ran', flush=False)\n"
              "threading.Thread(target=lambda: (time.sleep(1), print('foreground thread done'))).start()\n"
              f"run_and_exit(['run', '--horizon', '0', '--data-dir', {str(tmp_path)!r}])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["foreground thread done", "exit handler ran"]
    assert done.stderr.startswith("lstm-forecast: error: invalid settings: horizon")
