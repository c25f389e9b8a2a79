#!/usr/bin/env bash
# Create .venv (Python 3.11) if missing and install the project with its test extras.
# Idempotent: a stamp file in .venv records the sha256 of pyproject.toml that was installed;
# when it matches (and the project imports), nothing is installed again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
STAMP="$VENV/.whisperlite-installed"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

log() { echo "[bootstrap] $*"; }

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PY="$(find_python)" || {
        echo "[bootstrap] ERROR: Python 3.11 not found (tried \$PYTHON, python3.11, python3)." >&2
        echo "[bootstrap] Install it (e.g. 'pyenv install 3.11' or 'apt-get install python3.11 python3.11-venv') and retry." >&2
        exit 1
    }
    log "creating virtualenv .venv with $PY"
    "$PY" -m venv "$VENV"
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("whisperlite-study"); import django, celery, pytest, torch' >/dev/null 2>&1; then
    log ".venv is up to date (pyproject.toml sha256 ${want:0:12}); nothing to install"
    exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
log "installing ${TORCH_PINS[*]} first (so no dependency pulls a different torch)"
"$VENV/bin/python" -m pip install "${TORCH_PINS[@]}"
log "installing the project in editable mode with test extras: pip install -e '.[test]'"
"$VENV/bin/python" -m pip install -e '.[test]' "${TORCH_PINS[@]}"
echo "$want" >"$STAMP"
log "done (stamp written to .venv/$(basename "$STAMP"))"
