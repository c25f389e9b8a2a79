"""App configuration: start-up checks for the configured encoder."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class StudyAppConfig(AppConfig):
    name = "studyapp"
    verbose_name = "WhisperLite Study"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(check_encoder_setting)
        from studyapp import worker_init  # noqa: F401  (connects the Celery worker start-up hook)


def check_encoder_setting(app_configs=None, **kwargs) -> list[checks.CheckMessage]:  # type: ignore[no-untyped-def]
    """Fail every start-up (runserver, gunicorn's check, migrate, ...) on an unusable encoder spec."""
    from django.conf import settings

    from recommender.encoders import check_encoder_spec

    return [
        checks.Error(
            problem,
            hint="Fix the WHISPERLITE_ENCODER setting (see README, Configuration).",
            id="whisperlite.E001",
        )
        for problem in check_encoder_spec(settings.WHISPERLITE_ENCODER)
    ]
