"""Smoke test of README command 1's mode: the embedded default (SQLite, in-process tasks, DEBUG).

Runs the same steps as ``scripts/run_app.sh`` in subprocesses with a clean environment (no
``DATABASE_URL``/``CELERY_BROKER_URL``), then walks a participant through the study link, the
consent form (with its CSRF token) and on to the onboarding page over real HTTP.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Everything that could switch the app out of its embedded default.
_DROP_PREFIXES = ("DJANGO_", "DATABASE_", "CELERY_", "WHISPERLITE_", "PYTEST_")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _embedded_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
    env.update(
        DJANGO_DEBUG="1",
        DJANGO_SETTINGS_MODULE="studyapp.settings",
        WHISPERLITE_VAR_DIR=str(var_dir),
        HF_HUB_OFFLINE="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str, timeout: int = 120) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runserver exited with {server.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"runserver did not answer {url} within {timeout}s:\n{log.read_text(errors='replace')}")


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def test_embedded_default_serves_a_participant_from_link_to_onboarding(tmp_path: Path) -> None:
    env = _embedded_env(tmp_path / "var")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    _manage(env, "migrate", "--noinput")
    out = _manage(env, "setup_demo", "--sample", "--skip-training", "--base-url", base)
    assert (tmp_path / "var" / "db.sqlite3").exists(), (
        "the embedded default must use SQLite under WHISPERLITE_VAR_DIR"
    )
    match = re.search(r"Participant link\s*:\s*(\S+)", out)
    assert match, f"no participant link in setup_demo's output:\n{out}"
    link = match.group(1)
    assert link.startswith(base + "/s/")

    log = tmp_path / "runserver.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_until_up(base + "/healthz", server, log)
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            assert b'"ok": true' in response.read()

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        with opener.open(link, timeout=30) as response:  # /s/<study>/ -> 302 -> /p/<participant>/
            assert response.status == 200
            page_url = response.url
            html = response.read().decode()
        assert "Before you start" in html, html[:2000]
        assert re.fullmatch(rf"{re.escape(base)}/p/[^/]+/", page_url), page_url
        assert any(cookie.name == "csrftoken" for cookie in jar)

        form = urllib.parse.urlencode({"csrfmiddlewaretoken": _csrf_token(html), "agree": "yes"}).encode()
        with opener.open(page_url + "consent/", data=form, timeout=30) as response:  # POST -> 302 -> page
            assert response.status == 200
            assert response.url == page_url
            html = response.read().decode()
        assert "What do you like?" in html, html[:2000]
        assert "Before you start" not in html
        assert 'aria-pressed="true"' not in html

        # Picking an item (plain form POST, no htmx) re-renders the grid with it marked as picked.
        pick = re.search(r'action="(/p/[^"]+/picks/\d+/)"', html)
        assert pick, "no pick form on the onboarding page"
        form = urllib.parse.urlencode({"csrfmiddlewaretoken": _csrf_token(html)}).encode()
        with opener.open(base + pick.group(1), data=form, timeout=30) as response:
            html = response.read().decode()
        assert "What do you like?" in html
        assert html.count('aria-pressed="true"') == 1
    except BaseException:
        print(log.read_text(errors="replace"))
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
