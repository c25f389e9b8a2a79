#!/usr/bin/env bash
# README command 1: install everything into .venv and run the app.
#
# Default (embedded): DJANGO_DEBUG=1, SQLite under var/ (or $WHISPERLITE_VAR_DIR), Celery tasks run
# in-process, so nothing else needs to run. Arguments are passed to `manage.py setup_demo`
# (e.g. --sample, --skip-training). PORT (default 8000) picks the port of the dev server.
# With DATABASE_URL and/or CELERY_BROKER_URL already set, those are used as they are
# (production-like); then a separate `celery -A studyapp worker` must consume the queue.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/bootstrap.sh

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-studyapp.settings}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
PORT="${PORT:-8000}"
PY="$ROOT/.venv/bin/python"

if [ -n "${DATABASE_URL:-}" ] || [ -n "${CELERY_BROKER_URL:-}" ]; then
    echo "[run_app] using the configured services:"
    echo "[run_app]   DATABASE_URL      = ${DATABASE_URL:-<unset: embedded SQLite>}"
    echo "[run_app]   CELERY_BROKER_URL = ${CELERY_BROKER_URL:-<unset: tasks run in-process>}"
    if [ -n "${CELERY_BROKER_URL:-}" ]; then
        echo "[run_app] NOTE: rankings are queued on the broker; start a separate worker, e.g."
        echo "[run_app]       .venv/bin/celery -A studyapp worker -l info -c 1   (or: make worker)"
    fi
else
    echo "[run_app] embedded default: SQLite under ${WHISPERLITE_VAR_DIR:-var/}, Celery tasks run in-process"
fi

echo "[run_app] manage.py migrate"
"$PY" manage.py migrate --noinput
echo "[run_app] manage.py setup_demo --base-url http://127.0.0.1:$PORT $*"
"$PY" manage.py setup_demo --base-url "http://127.0.0.1:$PORT" "$@"
echo "[run_app] manage.py runserver 127.0.0.1:$PORT (Ctrl-C stops it)"
exec "$PY" manage.py runserver "127.0.0.1:$PORT"
