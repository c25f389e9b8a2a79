"""The one benchmark command, in small: ``scripts/bench_study.py --quick`` on the sample catalog.

Runs the ``task`` section for real (encoder, mat-vec, top-k, the ranking task in a throwaway
database) and checks that every figure is printed with n, its limit beside it, and that the
run writes nothing outside its var dir: not in the repository, not in the temp folder, not
in the home folder (the test settings would otherwise fall back to shared caches in /tmp).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def repo_files() -> set[str]:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line for line in out.stdout.splitlines() if not line[3:].startswith(".venv")}


def test_quick_task_section_prints_figures_beside_limits_and_writes_only_its_var_dir(tmp_path: Path) -> None:
    var, tmp, home = tmp_path / "var", tmp_path / "tmp", tmp_path / "home"
    tmp.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPERLITE_", "DJANGO_"))}
    env.update(
        WHISPERLITE_VAR_DIR=str(var), TMPDIR=str(tmp), HOME=str(home), PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1", WHISPERLITE_TORCH_THREADS="1", HF_HUB_OFFLINE="1",
    )  # fmt: skip
    before = repo_files()
    result = subprocess.run(
        [sys.executable, "scripts/bench_study.py", "--sections", "task", "--catalog", "sample", "--quick",
         "--requests", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "[task]" in out and "figures within their limits" in out
    for name in ("encoder alone (one request) p50", "mat-vec alone p50", "top-k alone"):
        assert re.search(re.escape(name) + r".* ms .*n=10", out), out
    task = re.search(
        r"ranking task p50\s+([\d.,]+) ms \[.*\]\s+n=10\s+<= ([\d.,]+) ms\s+(ok|OVER LIMIT)", out
    )
    ratio = re.search(r"task p50 / \(encode \+ mat-vec \+ top-k\) p50\s+([\d.]+) x\s+n=10\s+<= 1.30 x", out)
    assert task and ratio, out
    assert float(task.group(1).replace(",", "")) > 0
    assert re.search(r"(quiet|shared host) \(load average", out)
    assert repo_files() == before
    assert not list(tmp.iterdir()) and not list(home.iterdir())
    assert (var / "cache" / "embeddings").is_dir()
