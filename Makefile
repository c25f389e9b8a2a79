# Convenience targets; the scripts are the source of truth (README commands 1 and 2).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: bootstrap run test test-fast lint worker

bootstrap:  ## create .venv and install the project with its test extras
	bash scripts/bootstrap.sh

run:  ## embedded default: SQLite + in-process tasks, then the dev server (PORT=8000)
	bash scripts/run_app.sh

test:  ## the whole suite against PostgreSQL + Redis + Chromium (what CI runs)
	bash scripts/run_tests.sh

test-fast: bootstrap  ## quick local run: no slow benchmarks, no browser, no chaos harness
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow and not browser and not chaos"

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

worker: bootstrap  ## a Celery worker for the production-like mode (CELERY_BROKER_URL set)
	$(VENV)/bin/celery -A studyapp worker -l info
