"""The `lstm-forecast` command line: run the daily flow once, or serve it on its daily schedule.

Each command's handler imports what it runs when it runs: Prefect, TensorFlow and Great Expectations take
seconds to import, and `--help` or a mistyped option should answer at once."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import NoReturn

from flows.local_api import TemporaryApi, start_temporary_api
from flows.warmup import import_in_background
from forecasting.errors import DEBUG_VARIABLE, EXPECTED_ERRORS, UsageError

DEFAULT_CRON = "0 6 * * *"
DEFAULT_TUNE_CRON = "0 3 * * 0"
DEFAULT_TIMEZONE = "UTC"


def _options(*adders) -> argparse.ArgumentParser:
    """A parent parser holding the options the given functions add (shared by several commands)."""
    parent = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(parent)
    return parent


def _debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show full tracebacks, also for expected errors such as bad input files")


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", dest="input_path", metavar="PATH",
                        help="CSV or Parquet file, or a folder of them (default: the bundled sample)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="root of the stores the pipeline writes (default: data/store)")


def _sizes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--horizon", type=int, metavar="H", help="steps to forecast (default: by frequency, 14 daily)")
    parser.add_argument("--lookback", type=int, metavar="L",
                        help="input window length (default: by frequency, 28 daily)")


def _epochs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-epochs", type=int, metavar="N", help="upper bound on training epochs (default: 40)")


def build_parser() -> argparse.ArgumentParser:
    common = _options(_debug)  # options every command takes, before or after its name
    # What the commands that run the pipeline share: where the data is, window sizes, training length.
    data, sizes, epochs = _options(_data), _options(_sizes), _options(_epochs)
    parser = argparse.ArgumentParser(
        prog="lstm-forecast", parents=[common],
        description="Keep LSTM forecasts of many time series fresh: ingest, validate, gap-fill, window, "
                    "train and publish as a Prefect flow.",
        epilog="Settings not given here come from LSTM_FORECAST_* environment variables, lstm-forecast.toml, "
               "then defaults (see docs/settings.md).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", parents=[common, data, sizes, epochs],
                              help="run the daily flow once and exit (0 on success)",
                              description="Run the daily flow once: raw files to published forecasts.")
    run.add_argument("--as-of", metavar="TIMESTAMP",
                     help="forecast origin, ISO-8601 (naive = UTC); only data up to it is used "
                          "(default: the newest timestamp in the data)")
    run.add_argument("--task-runner", metavar="SPEC",
                     help="where per-series stages run: threads (default), dask (a local cluster of "
                          "dask_workers processes) or dask:<scheduler address>")

    setup = commands.add_parser(
        "setup", parents=[common],
        help="prepare the Prefect server: the work pool and the gpu concurrency limit (idempotent)",
        description="Create the process work pool the deployments in deployments/prefect.yaml use, and a task "
                    "concurrency limit on the tag 'gpu' (train, backtest and grid-search tasks carry it). "
                    "Uses the Prefect API in PREFECT_API_URL.")
    setup.add_argument("--pool", default="lstm-forecast", help="work pool name (default: lstm-forecast)")
    setup.add_argument("--gpu-slots", type=int, default=1, metavar="N",
                       help="training tasks allowed to run at once across all runs (default: 1)")

    backfill = commands.add_parser(
        "backfill", parents=[common, data, sizes, epochs],
        help="run the daily flow for every as-of in a date range, oldest first (resumable)",
        description="Run the daily flow once per as-of from --start to --end, oldest first. As-ofs already "
                    "published are skipped, so an interrupted backfill resumes where it stopped.")
    backfill.add_argument("--start", required=True, metavar="DATE", help="first as-of, ISO-8601 (naive = UTC)")
    backfill.add_argument("--end", required=True, metavar="DATE", help="last as-of, inclusive")
    backfill.add_argument("--every", default="D", metavar="FREQ",
                          help="step between as-ofs, a pandas frequency: D, 7D, h (default: D)")
    backfill.add_argument("--force", action="store_true", help="rerun as-ofs that are already published")

    backtest = commands.add_parser(
        "backtest", parents=[common, data, sizes, epochs],
        help="evaluate the model at rolling origins (MASE, sMAPE, interval coverage)",
        description="Rolling-origin backtest: for K origins cut_k = last - k*H, train on data up to the cut "
                    "exactly as the daily flow does, forecast H steps and score them. Writes JSON and a "
                    "Prefect artifact.")
    backtest.add_argument("--origins", type=int, default=3, metavar="K", help="rolling origins (default: 3)")
    backtest.add_argument("--output", metavar="FILE",
                          help="JSON report path (default: <data-dir>/backtest/backtest-<run date>.json)")

    tune = commands.add_parser(
        "tune", parents=[common, data, epochs],
        help="pick lookback, layers, units and dropout by rolling-origin cross-validation",
        description="Grid-search the model's size with the backtest's rolling origins; the winner is saved to "
                    "<data-dir>/models/tuned.json and used by daily runs for settings you have not set yourself.")
    tune.add_argument("--origins", type=int, default=2, metavar="K", help="rolling origins per candidate (default: 2)")
    for name, kind in (("lookback", int), ("layers", int), ("units", int), ("dropout", float)):
        tune.add_argument(f"--{name}", type=kind, nargs="+", metavar="V", help=f"{name} values to try")

    serve = commands.add_parser("serve", parents=[common],
                                help="serve the daily and tune flows on their schedules (needs a Prefect server)",
                                description="Serve the daily flow (daily cron) and the tune flow (weekly cron) as "
                                            "deployments. Runs until interrupted; scheduled and manual runs "
                                            "execute here.")
    serve.add_argument("--name", default="daily", help="deployment name (default: daily)")
    serve.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default: '{DEFAULT_CRON}')")
    serve.add_argument("--tune-cron", default=DEFAULT_TUNE_CRON,
                       help=f"cron schedule of the tune flow (default: '{DEFAULT_TUNE_CRON}')")
    serve.add_argument("--timezone", default=DEFAULT_TIMEZONE, help=f"schedule time zone (default: {DEFAULT_TIMEZONE})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "debug", False):
        os.environ[DEBUG_VARIABLE] = "1"  # read by the log filter that drops expected errors' tracebacks
    handlers = {"run": _run, "backtest": _backtest, "backfill": _backfill, "setup": _setup, "tune": _tune,
                "serve": _serve}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("lstm-forecast: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:  # bad input, settings or state: the message says it all
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"lstm-forecast: error: {_one_paragraph(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug or an outage: keep the traceback, then one readable line
        traceback.print_exc()
        print(f"lstm-forecast: error: {_one_paragraph(exc)} (unexpected {type(exc).__name__}; traceback above)",
              file=sys.stderr)
        return 1


def _check_settings(args: argparse.Namespace) -> None:
    """Report settings errors before Prefect starts, without a traceback."""
    from pydantic import ValidationError

    from forecasting.settings import load_settings

    try:
        load_settings(input_path=args.input_path, data_dir=args.data_dir, max_epochs=args.max_epochs,
                      task_runner=getattr(args, "task_runner", None),
                      **{k: getattr(args, k) for k in ("horizon", "lookback") if isinstance(getattr(args, k, None), int)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid settings: {problems}") from None


def _get_ready(api: TemporaryApi | None) -> None:
    """Once the flow's module (and with it Prefect) is imported: import the tasks' libraries in the
    background, and make the temporary API server started at the command's start Prefect's API."""
    import_in_background()
    if api is not None:
        api.adopt()


def _run(args: argparse.Namespace) -> int:
    _check_settings(args)
    api = start_temporary_api()
    from flows.daily import daily_forecast

    _get_ready(api)
    result = daily_forecast(input_path=args.input_path, data_dir=args.data_dir, as_of=args.as_of,
                            horizon=args.horizon, lookback=args.lookback, max_epochs=args.max_epochs,
                            task_runner=args.task_runner)
    published = result["published"]
    print(f"Published {published.rows} forecast rows for {published.series} series "
          f"(run date {published.run_date}, model {published.model_version}) to {published.parquet_path}")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from flows.setup import setup_server

    if args.gpu_slots < 1:
        raise UsageError("--gpu-slots must be at least 1")
    for line in setup_server(args.pool, args.gpu_slots).values():
        print(line)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from flows.backfill import as_of_dates

    _check_settings(args)
    as_of_dates(args.start, args.end, args.every)  # argument errors before Prefect starts
    api = start_temporary_api()
    from flows.backfill import backfill_flow

    _get_ready(api)
    result = backfill_flow(start=args.start, end=args.end, every=args.every, input_path=args.input_path,
                           data_dir=args.data_dir, force=args.force, horizon=args.horizon, lookback=args.lookback,
                           max_epochs=args.max_epochs)
    print(f"Backfilled {len(result['ran'])} as-of(s)" + (f": {', '.join(result['ran'])}" if result["ran"] else "")
          + (f"; {len(result['skipped'])} already published, skipped" if result["skipped"] else ""))
    return 0


def _backtest(args: argparse.Namespace) -> int:
    _check_settings(args)
    if args.origins < 1:
        raise UsageError(f"--origins must be at least 1, not {args.origins}")
    api = start_temporary_api()
    from flows.backtest import backtest_flow

    _get_ready(api)
    summary = backtest_flow(input_path=args.input_path, data_dir=args.data_dir, origins=args.origins,
                            horizon=args.horizon, lookback=args.lookback, max_epochs=args.max_epochs,
                            output=args.output)
    print(f"Backtest over {args.origins} origins: MASE {summary['mase']:.4f}, sMAPE {summary['smape']:.2f}, "
          f"80% coverage {summary['coverage']:.3f}, training {summary['train_seconds']:.1f} s; "
          f"report: {summary['path']}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    _check_settings(args)
    grid = {name: getattr(args, name) for name in ("lookback", "layers", "units", "dropout") if getattr(args, name)}
    api = start_temporary_api()
    from flows.tune import tune_flow

    _get_ready(api)
    winner = tune_flow(input_path=args.input_path, data_dir=args.data_dir, origins=args.origins,
                       grid=grid or None, max_epochs=args.max_epochs)
    print(f"Tuned over {winner['candidates']} candidates: {winner['config']} (MASE {winner['mase']:.4f}); "
          "daily runs use it from now on")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from prefect import serve
    from prefect.schedules import Cron

    from flows.daily import daily_forecast
    from flows.tune import tune_flow

    serve(daily_forecast.to_deployment(name=args.name, tags=["lstm-forecast"],
                                       schedules=[Cron(args.cron, timezone=args.timezone, slug="daily")],
                                       description="Daily LSTM retraining and forecast publication"),
          tune_flow.to_deployment(name="weekly", tags=["lstm-forecast"],
                                  schedules=[Cron(args.tune_cron, timezone=args.timezone, slug="weekly")],
                                  description="Weekly hyper-parameter search by rolling-origin CV"),
          pause_on_shutdown=False)
    return 0


def _one_paragraph(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + " ..."


def run_and_exit(argv: Sequence[str] | None = None) -> NoReturn:
    """The `lstm-forecast` command: `main`, then the exit handlers, then the end of the process.

    Python's own exit runs the exit handlers (Prefect sends its last logs and stops its temporary server,
    logging flushes) and then tears every module and object down one by one; with TensorFlow loaded that
    took 0.8 s on two cores (4 s on a slow one) after the work was done and its files closed. Here the
    foreground threads are joined and the exit handlers run as they would, and the teardown is skipped."""
    code = main(argv)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()  # what Python waits for before its exit handlers
    _send_prefect_logs()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _send_prefect_logs() -> None:
    """Send the logs Prefect's log worker holds while its event loop and API are up. Left to logging's own
    exit handler, which runs last, the worker's loop was already shut down by Prefect's exit handlers, and
    the flush waited out Prefect's 5 s timeout at every command's end."""
    handlers = sys.modules.get("prefect.logging.handlers")
    if handlers is not None:
        handlers.APILogWorker.drain_all(timeout=5)


if __name__ == "__main__":
    run_and_exit()
