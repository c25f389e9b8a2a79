"""Ranking processes run the torch thread count the settings ask for (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.test import override_settings

from studyapp import ranking_service

ROOT = Path(__file__).resolve().parents[2]


def test_configure_threads_applies_the_setting_and_restores_it() -> None:
    before = torch.get_num_threads()
    try:
        with override_settings(WHISPERLITE_TORCH_THREADS=2):
            assert ranking_service.configure_threads() == 2
            assert torch.get_num_threads() == 2
        with override_settings(WHISPERLITE_TORCH_THREADS=1):
            assert ranking_service.configure_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_defaults_are_one_torch_thread_and_one_worker_process_per_core() -> None:
    assert settings.WHISPERLITE_TORCH_THREADS == int(os.environ.get("WHISPERLITE_TORCH_THREADS", "1"))
    assert settings.CELERY_WORKER_CONCURRENCY == int(
        os.environ.get("CELERY_WORKER_CONCURRENCY", str(os.cpu_count() or 1))
    )


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_fresh_process_loads_the_encoder_with_the_configured_thread_count(threads: str) -> None:
    """Torch's default is one thread per core; the encoder loads only after the setting applies."""
    code = (
        "import django; django.setup();"
        "import torch; from studyapp import ranking_service;"
        "ranking_service.get_encoder(); print(torch.get_num_threads())"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        WHISPERLITE_TORCH_THREADS=threads,
        HF_HUB_OFFLINE="1",
    )
    env.pop("OMP_NUM_THREADS", None)  # the setting, not the environment, must decide
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == threads
