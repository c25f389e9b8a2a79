"""WSGI entry point for gunicorn (``gunicorn studyapp.wsgi``) and ``runserver``.

With tasks in-process (no broker: the embedded default) the web process also runs the
request sweeper, since there is no worker to run it (:mod:`studyapp.sweeper`).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyapp.settings")
application = get_wsgi_application()


def _start_in_process_sweeper() -> None:
    from studyapp import sweeper
    from studyapp.celery import app

    if app.conf.task_always_eager:
        sweeper.start()


_start_in_process_sweeper()
