"""The `lstm-forecast` command line: run the daily flow once, or serve it on its daily schedule."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_CRON = "0 6 * * *"
DEFAULT_TIMEZONE = "UTC"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-forecast",
        description="Keep LSTM forecasts of many time series fresh: ingest, validate, gap-fill, window, "
                    "train and publish as a Prefect flow.",
        epilog="Settings not given here come from LSTM_FORECAST_* environment variables, lstm-forecast.toml, "
               "then defaults (see README, 'Settings').")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daily flow once and exit (0 on success)",
                              description="Run the daily flow once: raw files to published forecasts.")
    run.add_argument("--input", dest="input_path", metavar="PATH",
                     help="CSV or Parquet file, or a folder of them (default: the bundled sample)")
    run.add_argument("--data-dir", metavar="DIR", help="root of the stores the pipeline writes (default: data/store)")
    run.add_argument("--as-of", metavar="TIMESTAMP",
                     help="forecast origin, ISO-8601 (naive = UTC); only data up to it is used "
                          "(default: the newest timestamp in the data)")
    run.add_argument("--horizon", type=int, metavar="H", help="steps to forecast (default: by frequency, 14 daily)")
    run.add_argument("--lookback", type=int, metavar="L", help="input window length (default: by frequency, 28 daily)")
    run.add_argument("--max-epochs", type=int, metavar="N", help="upper bound on training epochs (default: 40)")

    backtest = commands.add_parser(
        "backtest", help="evaluate the model at rolling origins (MASE, sMAPE, interval coverage)",
        description="Rolling-origin backtest: for K origins cut_k = last - k*H, train on data up to the cut "
                    "exactly as the daily flow does, forecast H steps and score them. Writes JSON and a "
                    "Prefect artifact.")
    backtest.add_argument("--input", dest="input_path", metavar="PATH", help="as for run (default: the bundled sample)")
    backtest.add_argument("--data-dir", metavar="DIR", help="as for run (default: data/store)")
    backtest.add_argument("--origins", type=int, default=3, metavar="K", help="rolling origins (default: 3)")
    backtest.add_argument("--horizon", type=int, metavar="H", help="steps per origin (default: by frequency, 14 daily)")
    backtest.add_argument("--lookback", type=int, metavar="L", help="input window length (default: by frequency)")
    backtest.add_argument("--max-epochs", type=int, metavar="N", help="upper bound on training epochs (default: 40)")
    backtest.add_argument("--output", metavar="FILE",
                          help="JSON report path (default: <data-dir>/backtest/backtest-<run date>.json)")

    serve = commands.add_parser("serve", help="serve the flow as a scheduled deployment (needs a Prefect server)",
                                description="Serve the daily flow as a deployment with a daily cron schedule. "
                                            "Runs until interrupted; scheduled and manual runs execute here.")
    serve.add_argument("--name", default="daily", help="deployment name (default: daily)")
    serve.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule (default: '{DEFAULT_CRON}')")
    serve.add_argument("--timezone", default=DEFAULT_TIMEZONE, help=f"schedule time zone (default: {DEFAULT_TIMEZONE})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "backtest":
            return _backtest(args)
        return _serve(args)
    except KeyboardInterrupt:
        print("lstm-forecast: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into a readable exit
        print(f"lstm-forecast: error: {_one_paragraph(exc)}", file=sys.stderr)
        return 1


def _check_settings(args: argparse.Namespace) -> None:
    """Report settings errors before Prefect starts, without a traceback."""
    from pydantic import ValidationError

    from tasks.settings import load_settings

    try:
        load_settings(input_path=args.input_path, data_dir=args.data_dir, horizon=args.horizon,
                      lookback=args.lookback, max_epochs=args.max_epochs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid settings: {problems}") from None


def _run(args: argparse.Namespace) -> int:
    from flows.daily import daily_forecast

    _check_settings(args)
    result = daily_forecast(input_path=args.input_path, data_dir=args.data_dir, as_of=args.as_of,
                            horizon=args.horizon, lookback=args.lookback, max_epochs=args.max_epochs)
    published = result["published"]
    print(f"Published {published['rows']} forecast rows for {published['series']} series "
          f"(run date {published['run_date']}, model {published['model_version']}) to {published['parquet_path']}")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from flows.backtest import backtest_flow

    _check_settings(args)
    if args.origins < 1:
        raise ValueError(f"--origins must be at least 1, not {args.origins}")
    summary = backtest_flow(input_path=args.input_path, data_dir=args.data_dir, origins=args.origins,
                            horizon=args.horizon, lookback=args.lookback, max_epochs=args.max_epochs,
                            output=args.output)
    print(f"Backtest over {args.origins} origins: MASE {summary['mase']:.4f}, sMAPE {summary['smape']:.2f}, "
          f"80% coverage {summary['coverage']:.3f}, training {summary['train_seconds']:.1f} s; "
          f"report: {summary['path']}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from prefect.schedules import Cron

    from flows.daily import daily_forecast

    daily_forecast.serve(name=args.name, schedules=[Cron(args.cron, timezone=args.timezone, slug="daily")],
                         tags=["lstm-forecast"], description="Daily LSTM retraining and forecast publication",
                         pause_on_shutdown=False)
    return 0


def _one_paragraph(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + " ..."


if __name__ == "__main__":
    sys.exit(main())
