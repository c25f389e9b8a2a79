"""Worker start-up: load the encoder, and run the request sweeper (:mod:`studyapp.sweeper`).

The encoder is loaded when a Celery worker starts, not on a participant's first request.

A worker whose encoder cannot be loaded (missing CLIP weights, no network for a named
checkpoint) then fails at start-up with the reason in its log, instead of failing requests.
Prefork children load it in their own process (torch state must not cross a fork); the
solo and threads pools run tasks in the main process, so it is loaded there.
"""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutdown

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


@worker_ready.connect
def _start_sweeper(**kwargs: object) -> None:
    from studyapp import sweeper

    sweeper.start()


@worker_shutdown.connect
def _stop_sweeper(**kwargs: object) -> None:
    from studyapp import sweeper

    sweeper.stop()
