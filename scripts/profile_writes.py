"""Where a judgement write's time goes: one process, the production settings, PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres OMP_NUM_THREADS=1 \
        .venv/bin/python scripts/profile_writes.py [--writes 600]

Creates a database on the server of ``DATABASE_URL`` (dropped at the end), the same
participants as ``scripts/bench_writes.py``, and sends ``--writes`` ratings through Django's
WSGI handler (every middleware, CSRF enforced, the session cookie sent) in this process, with
no HTTP server, so the figures are the application's own cost per write. Prints: the queries
of one write (SQL), CPU per write for the whole handler and for each middleware's own part
(the time inside a layer minus the time inside the next one), the view, the service and the
fragment's rendering, and cProfile's top functions. Files go under the var dir only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))

import bench_writes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=600)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--var-dir", type=Path, default=None)
    args = parser.parse_args()
    var_dir = (
        args.var_dir or Path(os.environ.get("WHISPERLITE_VAR_DIR", REPO / "var")) / "profile_writes"
    ).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    stack_args = bench_writes.parse_args(["--database-url", args.database_url])
    stack = bench_writes.Stack(stack_args, var_dir)
    try:
        stack.create_database()
        os.environ.update(stack.env)
        sys.path.insert(0, str(var_dir / "settings"))
        profile(args.writes)
    finally:
        from django.db import connections

        connections.close_all()
        stack.stop()


VIEW = "view (resolve + process_view + view)"
SERVICE = "service (the write's transaction)"


def _timed(name: str, fn: Callable[..., Any], spent: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            spent[name] += time.process_time() - start

    return wrapper


def profile(writes: int) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from studyapp import services
    from studyapp.views import participant as views

    setup = run_setup(writes)
    info = setup["clients"][0]
    client = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = info["session"]
    page = client.get(f"/p/{info['token']}/")
    assert page.status_code == 200, page.status_code
    form_token = bench_writes.CSRF_INPUT.search(page.content).group(1).decode()  # type: ignore[union-attr]
    url = f"/p/{info['token']}/judge/"
    scale = setup["scale"]

    def write(n: int) -> None:
        slot = info["slots"][n % len(info["slots"])]
        # URL-encoded, as static/js/study.js and a plain form post send it.
        body = urlencode({"csrfmiddlewaretoken": form_token, "slot": slot, "label": scale[n % len(scale)]})
        response = client.post(
            url, body, content_type="application/x-www-form-urlencoded", HTTP_HX_REQUEST="true"
        )
        assert response.status_code == 200, response.content[:200]

    for n in range(20):  # warm-up: templates compiled, connection open
        write(n)
    with CaptureQueriesContext(connection) as first:
        write(len(info["slots"]) // 2)  # a first rating of its slot
    print(f"\nqueries of one first-time write ({len(first.captured_queries)}):")
    for q in first.captured_queries:
        print(f"  {q['time']:>6} s  {q['sql'][:160]}")

    # Each middleware's own part: wrap every layer of the handler's chain and the view.
    handler = client.handler
    spent: dict[str, float] = defaultdict(float)
    _instrument(handler, spent)
    spent.clear()
    # The write the view calls: rating_write.save_rating where it exists (PostgreSQL's two
    # statements), else do_save_judgement / do_record_judgement, for "before" profiles.
    owner: Any = getattr(views, "rating_write", None) or services
    service_name = next(
        n for n in ("save_rating", "do_save_judgement", "do_record_judgement") if hasattr(owner, n)
    )
    real_record, real_render = getattr(owner, service_name), views.render
    setattr(owner, service_name, _timed(SERVICE, real_record, spent))
    views.render = _timed("render fragment", real_render, spent)
    real_fragment = getattr(owner, "render_fragment", None)  # the fast path's hand-written fragment
    if real_fragment is not None:
        owner.render_fragment = _timed("render fragment", real_fragment, spent)
    n0 = len(info["slots"]) // 2 + 2
    count = min(writes, len(info["slots"]) - n0)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for n in range(n0, n0 + count):
        write(n)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    setattr(owner, service_name, real_record)
    views.render = real_render
    if real_fragment is not None:
        owner.render_fragment = real_fragment
    print(
        f"\n{count} first-time writes in-process: CPU {1000 * cpu / count:.2f} ms/write, wall {1000 * wall / count:.2f} ms/write"
    )
    print("own CPU per write by layer (ms):")
    inclusive = dict(spent)
    names = sorted(k for k in inclusive if k.startswith("mw "))
    for i, name in enumerate(names):
        inner = inclusive[names[i + 1]] if i + 1 < len(names) else inclusive[VIEW]
        print(f"  {name[3:]:<60} {1000 * (inclusive[name] - inner) / count:6.3f}")
    for name in (
        [VIEW] + sorted(k for k in inclusive if k.endswith("process_view")) + [SERVICE, "render fragment"]
    ):
        print(f"  {name:<60} {1000 * inclusive.get(name, 0.0) / count:6.3f} (inclusive)")

    profiler = cProfile.Profile()
    info2 = setup["clients"][1]
    client.cookies["sessionid"] = info2["session"]
    page = client.get(f"/p/{info2['token']}/")
    form_token = bench_writes.CSRF_INPUT.search(page.content).group(1).decode()  # type: ignore[union-attr]
    url = f"/p/{info2['token']}/judge/"
    info = info2
    profiler.enable()
    for n in range(min(writes, len(info["slots"]))):
        write(n)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    print(out.getvalue())


def _instrument(handler: Any, spent: dict[str, float]) -> None:
    """Time each middleware instance's call, and the innermost part (URL resolution, every
    middleware's process_view such as the CSRF check, and the view), with CPU timers."""
    layer = handler._middleware_chain
    index = 0
    while True:
        target = getattr(layer, "__wrapped__", None)
        if target is None or not hasattr(target, "get_response"):
            break
        name = f"mw {index:02d} {type(target).__name__}"
        target.__call__  # noqa: B018 - instance calls go through the class: patch a subclass
        target.__class__ = type(
            type(target).__name__, (type(target),), {"__call__": _timed_call(name, spent)}
        )
        last = target
        layer = target.get_response
        index += 1
    last.get_response = _timed(VIEW, last.get_response, spent)
    # process_view hooks are bound when the handler loads its middleware: wrap them there.
    handler._view_middleware = [
        _timed(f"{type(hook.__self__).__name__}.process_view", hook, spent)
        for hook in handler._view_middleware
    ]


def _timed_call(name: str, spent: dict[str, float]) -> Callable[..., Any]:
    def call(self: Any, request: Any) -> Any:
        start = time.process_time()
        try:
            return super(type(self), self).__call__(request)
        finally:
            spent[name] += time.process_time() - start

    return call


def run_setup(writes: int) -> dict:
    requests_each = max(1, writes // 20 + 2)
    namespace: dict[str, Any] = {}
    sys.argv = ["setup", "2", str(requests_each), "10", "profile"]
    out = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = out
    try:
        exec(bench_writes.SETUP, namespace)  # noqa: S102 - the bench's own setup code
    finally:
        sys.stdout = real_stdout
    return json.loads(out.getvalue().strip().splitlines()[-1])


if __name__ == "__main__":
    main()
