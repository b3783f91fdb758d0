# Two commands do everything on a fresh machine:
#   make run    set up .venv (pinned, from requirements.lock) and run the daily flow on the bundled sample
#   make test   set up .venv and run the test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# Test processes (pytest-xdist), one per core: tests are dealt out one by one (a long test no longer holds
# its whole file on one worker), except the files marked with an xdist_group, whose module fixtures run once.
TEST_WORKERS ?= 2

.PHONY: setup run test serve clean-store

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/lstm-forecast run $(ARGS)

serve: $(STAMP)
	$(VENV)/bin/lstm-forecast serve $(ARGS)

test: $(STAMP)
	bash tests/setup_browser.sh
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

clean-store:
	rm -rf data/store

# Benchmarks (not part of the test suite). statsforecast needs pandas < 3, so baselines get their own venv.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): benchmarks/requirements-bench.lock
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-bench.lock
	touch $(BENCH_STAMP)

# Every benchmark, one after another (about 35 minutes on 2 cores); each prints its ratios to a reference.
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/windowing.py
	$(PY) benchmarks/windowing.py --freq h
	$(PY) benchmarks/training_input.py
	$(PY) benchmarks/train_device.py
	$(PY) benchmarks/stages.py
	$(PY) benchmarks/flow_overhead.py
	$(PY) benchmarks/incremental.py --series 10 100 1000
	$(BENCH_VENV)/bin/python benchmarks/baselines.py

.PHONY: backtest bench bench-baselines
backtest: $(STAMP)
	$(VENV)/bin/lstm-forecast backtest $(ARGS)

bench-baselines: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/baselines.py $(ARGS)

# The development panel (../shared/data): our backtest on every dataset, then every peer on the same cuts
# (seasonal naive, AutoETS, AutoTheta, MSTL, NeuralForecast LSTM and NHITS on the CPU). Peer results are
# cached in benchmarks/results/dev_panel_peers.json; the table goes to benchmarks/results/dev_panel.md.
DEV_REPORTS ?= /tmp/lstm-forecast-dev-panel
.PHONY: bench-dev
bench-dev: $(STAMP) $(BENCH_STAMP)
	rm -rf $(DEV_REPORTS)
	$(PY) benchmarks/dev_backtest.py --out $(DEV_REPORTS)
	$(BENCH_VENV)/bin/python benchmarks/dev_panel.py --reports $(DEV_REPORTS) --output benchmarks/results/dev_panel.md

# Whole flow per cut (`lstm-forecast run`, process start to exit) against NeuralForecast LSTM's fit+predict on the
# same cut, timed in the same run; the small datasets by default (about 12 minutes; DEV_FLOW_DATASETS= for all).
DEV_FLOW_DATASETS ?= bike_daily m4_monthly wikipedia seattle_daily
.PHONY: bench-dev-flow
bench-dev-flow: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/dev_flow_time.py $(if $(DEV_FLOW_DATASETS),--datasets $(DEV_FLOW_DATASETS))
