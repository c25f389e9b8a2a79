#!/usr/bin/env bash
# README command 2: install everything and run the whole test suite (every marker, slow included).
#
# Needs (and tries to start) PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, and
# Chromium at /usr/bin/chromium (installed with apt-get when missing and running as root).
# Arguments go to pytest, e.g. `scripts/run_tests.sh -x -q -m "not slow and not browser"`.
# Exit status: ruff's or mypy's if they fail, else pytest's ("no tests collected" counts as failure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { echo "[run_tests] $*"; }
die() { echo "[run_tests] ERROR: $*" >&2; exit 1; }

bash scripts/bootstrap.sh

# --- Chromium (browser tests) ------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "/usr/bin/chromium is missing. Install it as root: sudo apt-get update && sudo apt-get install -y chromium"
    fi
    log "installing Debian chromium (apt-get update && apt-get install -y chromium)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium
fi

# --- PostgreSQL and Redis ----------------------------------------------------------------
reachable() { # host port
    "$ROOT/.venv/bin/python" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}
wait_for() { # host port seconds
    local i
    for ((i = 0; i < $3; i++)); do
        reachable "$1" "$2" && return 0
        sleep 1
    done
    return 1
}

if ! reachable 127.0.0.1 5432; then
    log "PostgreSQL is not reachable on 127.0.0.1:5432; trying to start it"
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
    fi
    wait_for 127.0.0.1 5432 15 || die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started.
  Install and start it, e.g. (Debian, as root):
    apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start
  The tests connect as user 'postgres' without a password (trust auth for 127.0.0.1 in pg_hba.conf)."
fi
if ! reachable 127.0.0.1 6379; then
    log "Redis is not reachable on 127.0.0.1:6379; trying to start it"
    if command -v redis-server >/dev/null 2>&1; then
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    fi
    wait_for 127.0.0.1 6379 10 || die "Redis is not reachable on 127.0.0.1:6379 and could not be started.
  Install and start it, e.g. (Debian, as root):
    apt-get install -y redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/whisperlite"
export CELERY_TEST_BROKER_URL="redis://127.0.0.1:6379/15"
export HF_HUB_OFFLINE=1
export CI_REQUIRE_SERVICES=1
unset CELERY_BROKER_URL  # the test settings keep Celery eager; the worker test uses CELERY_TEST_BROKER_URL

log "ruff check ."
"$ROOT/.venv/bin/ruff" check . || die "ruff check failed (fix the findings above, or run 'ruff check --fix .')"

log "mypy (strict, recommender/)"
"$ROOT/.venv/bin/mypy" || die "mypy found type errors in recommender/ (see above)"

log "python -m pytest $*"
set +e
"$ROOT/.venv/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    log "FAILED: pytest collected no tests (exit code 5)"
    exit 5
fi
[ "$status" -eq 0 ] && log "all tests passed" || log "pytest failed with exit code $status"
exit "$status"
