"""Test settings: only overrides. PostgreSQL and Redis on 127.0.0.1 unless the environment says otherwise."""

import os
import uuid

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord")
# Shared by a pytest run's xdist workers and the Celery workers its tests start (they inherit it).
os.environ.setdefault("CONCORD_TEST_RUN_ID", uuid.uuid4().hex[:12])

from config.settings import *  # noqa: F403

# Every xdist worker gets its own Redis database and key prefix, so the Celery workers of parallel tests
# (or of another test run on the same Redis) never take each other's tasks. Computed here, not put in the
# environment: processes that inherit the environment must compute their own.
_xdist = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
CELERY_BROKER_URL = os.environ.get("CONCORD_TEST_BROKER_URL", f"redis://127.0.0.1:6379/{15 - _xdist % 8}")
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=6 * 3600),  # noqa: F405
    "global_keyprefix": f"concord-test-{os.environ['CONCORD_TEST_RUN_ID']}-{_xdist}:",
}

# Revocations are per site: parallel test processes are separate sites (one worker's assignment changes must
# not empty the other's decision cache in the middle of a fast-path test).
DICOMWEB_DECISIONS_EPOCH = VAR_DIR / f"dicomweb-decisions-test-{_xdist}.epoch"  # noqa: F405

# tests load schemes of their own: each reads the names as they are (the cache has a test of its own)
SCHEME_NAMES_CACHE_S = 0.0

# no frame cache unless a test (or a bench, through the environment) asks for one, with its own folder: a test's
# frames never answer another's
FRAME_CACHE_MB = env.float("FRAME_CACHE_MB", default=0.0)  # noqa: F405

# tests open a connection per request, as before issue 16 (live servers and workers start and stop often)
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns about a missing folder
CONSENSUS_DEBOUNCE_S = 0.0  # refit at once in tests
