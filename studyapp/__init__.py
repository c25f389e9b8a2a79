"""WhisperLite Study: the Django project and app for running recommendation user studies."""

from studyapp.celery import app as celery_app

__all__ = ("celery_app",)
