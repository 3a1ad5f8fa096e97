# Two commands for a fresh machine: `make demo` and `make test`. Each installs what it needs itself.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
# Newest Airflow 3 release, and the oldest one this provider claims (3.1: async connection lookup, airflow.sdk hooks).
AIRFLOW_VERSION ?= 3.3.2
AIRFLOW_OLDEST ?= 3.1.8
VENV ?= .venv
OLDEST_VENV ?= .venv-airflow-$(AIRFLOW_OLDEST)
PYTEST_ARGS ?=

export PYTHON

.PHONY: demo test test-newest test-oldest venv venv-oldest emulator benchmarks dist clean

venv:
	scripts/bootstrap.sh $(VENV) $(AIRFLOW_VERSION)

venv-oldest:
	scripts/bootstrap.sh $(OLDEST_VENV) $(AIRFLOW_OLDEST)

## Run the example DAG end to end against the emulator; prints where the edited images are.
demo: venv
	VENV=$(VENV) scripts/demo.sh

## The whole suite on the newest Airflow (with coverage, the e2e and the release tests), then the unit suite on the
## oldest (the release tests build a fresh venv of the newest Airflow: once is enough).
test: test-newest test-oldest

test-newest: venv
	$(VENV)/bin/python -m pytest -p no:cacheprovider --cov --cov-report=term $(PYTEST_ARGS) tests

test-oldest: venv-oldest
	$(OLDEST_VENV)/bin/python -m pytest -p no:cacheprovider -m "not e2e and not release" $(PYTEST_ARGS) tests

## Serve the emulator on http://127.0.0.1:8089 in the foreground.
emulator: venv
	$(VENV)/bin/python -m seedream_emulator --port 8089

benchmarks: venv
	$(VENV)/bin/python benchmarks/import_cost.py
	$(VENV)/bin/python benchmarks/submit_burst.py --tasks 200
	$(VENV)/bin/python benchmarks/triggerer_scale.py --tasks 1000

## Build the sdist and the wheel into dist/ (the wheel from the sdist) and check their metadata with twine.
dist: venv
	rm -rf dist
	$(VENV)/bin/python -m build --outdir dist .
	$(VENV)/bin/python -m twine check --strict dist/*
	@ls -l dist

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .demo .coverage dist build
