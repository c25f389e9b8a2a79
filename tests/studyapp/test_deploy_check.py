"""The production settings pass ``manage.py check --deploy`` and refuse to start without a secret key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Variables of the test process that must not leak into the production-like subprocess.
_DROP = ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # Every DJANGO_* variable is dropped: some (e.g. DJANGO_ALLOW_ASYNC_UNSAFE, set by browser tests) fail the check.
    env = {k: v for k, v in os.environ.items() if k not in _DROP and not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="studyapp.settings",
        DJANGO_ALLOWED_HOSTS="study.example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        WHISPERLITE_VAR_DIR=str(tmp_path / "var"),
        HF_HUB_OFFLINE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_check_deploy_passes_with_production_env(tmp_path: Path) -> None:
    env = _production_env(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, f"check --deploy failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("debug", [None, "0"])
def test_settings_refuse_to_load_without_secret_key(tmp_path: Path, debug: str | None) -> None:
    env = _production_env(tmp_path)
    if debug is not None:
        env["DJANGO_DEBUG"] = debug
    result = _manage(env, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr
