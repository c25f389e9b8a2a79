"""Worker start-up: load the encoder, and run the request sweeper (:mod:`studyapp.sweeper`).

The encoder is loaded when a Celery worker starts, not on a participant's first request.

A worker whose encoder cannot be loaded (missing CLIP weights, no network for a named
checkpoint) then fails at start-up with the reason in its log, instead of failing requests.
Prefork children load it in their own process (torch state must not cross a fork); the
solo and threads pools run tasks in the main process, so it is loaded there.
"""

from __future__ import annotations

import logging

from celery.signals import task_prerun, worker_init, worker_process_init, worker_ready, worker_shutdown

log = logging.getLogger(__name__)


def load_encoder() -> None:
    from studyapp import ranking_service

    encoder = ranking_service.get_encoder()
    log.info("worker ready with encoder %s", encoder.encoder_id)


@worker_process_init.connect
def _load_in_pool_process(**kwargs: object) -> None:
    load_encoder()


@worker_init.connect
def _load_in_main_process(sender: object = None, **kwargs: object) -> None:
    if "prefork" not in str(getattr(sender, "pool_cls", "prefork")):
        load_encoder()


@task_prerun.connect
def _check_connections(sender: object = None, **kwargs: object) -> None:
    """Before each task, what Django does before each web request: drop a connection that is
    broken or past ``DATABASE_CONN_MAX_AGE``, and have the next query check it first
    (``CONN_HEALTH_CHECKS``), so a database restart costs no task an error. Connections
    outlive tasks (``CELERY_DB_REUSE_MAX``) instead of being opened anew for each one."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # in-process: the caller's connection, managed by the caller
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


@worker_ready.connect
def _start_sweeper(**kwargs: object) -> None:
    from studyapp import sweeper

    sweeper.start()


@worker_shutdown.connect
def _stop_sweeper(**kwargs: object) -> None:
    from studyapp import sweeper

    sweeper.stop()
