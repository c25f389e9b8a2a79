"""Test settings: the real settings module, with a test secret and plain static files.

The database comes from ``DATABASE_URL`` like in production (the test command points it at
PostgreSQL); without it the tests run on SQLite.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-" + "x" * 40)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WHISPERLITE_VAR_DIR", os.path.join(tempfile.gettempdir(), "whisperlite-test-var"))

from studyapp.settings import *  # noqa: E402,F403
from studyapp.settings import BASE_DIR, VAR_DIR  # noqa: E402

# Tests run the live server over plain http and never collect static files.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
# Embeddings are cached across test runs (keyed by catalog version and encoder, so never stale).
WHISPERLITE_CACHE_DIR = os.environ.get(
    "WHISPERLITE_CACHE_DIR", os.path.join(tempfile.gettempdir(), "whisperlite-test-cache")
)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = os.path.join(VAR_DIR, "test-static")  # under the var dir: parallel runs stay apart
os.makedirs(STATIC_ROOT, exist_ok=True)
# In-process tasks run synchronously in tests (a background thread could not see the test's
# uncommitted transaction); test_embedded_default checks the background mode on its own.
WHISPERLITE_EAGER_IN_BACKGROUND = False
# Tests call sweeper.sweep_once() themselves; a real worker started by a test may sweep.
WHISPERLITE_SWEEP_SECONDS = float(os.environ.get("WHISPERLITE_SWEEP_SECONDS", "0"))
