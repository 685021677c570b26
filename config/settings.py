"""Settings, read from the environment (and an optional `.env` file at the repository root).

Nothing configured means the embedded defaults: a SQLite file and Celery's filesystem transport under
`var/`. `DATABASE_URL` (PostgreSQL via psycopg 3) and `CELERY_BROKER_URL` (Redis) switch to the real
services. `.env.example` lists every variable.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("CONCORD_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY")  # no default: a missing secret stops start-up
if SECRET_KEY.strip().lower() in {"", "change-me", "changeme", "secret", "django-insecure"}:
    raise ImproperlyConfigured(
        "SECRET_KEY is empty or a placeholder: set a long random one (see .env.example)"
    )
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "labeling.api.errors.csrf_failure"  # JSON 403 on API paths

# Behind TLS (production: README "Production settings"). HTTPS=true turns on the redirect, secure cookies and
# HSTS, and trusts X-Forwarded-Proto from the reverse proxy, which must set it (and drop a client's own).
HTTPS = env.bool("HTTPS", default=False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content Security Policy (django-csp): same-origin scripts, workers and WebAssembly (the image codecs),
# images from blob:/data: (rendered viewports), no plugins, no framing. The Swagger UI at /api/docs/ loads
# from a CDN and is left out.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "worker-src": ["'self'", "blob:"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "csp",
    "labeling",
    "ml",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "labeling.middleware.RequestContextMiddleware",
    "labeling.api.authentication.AdminLoginThrottleMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'concord.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a connection per web thread kept for DB_CONN_MAX_AGE seconds (0: one per request, as
# before issue 16; opening one cost more than the query of a worklist), checked before reuse so a database that
# restarted costs a reconnect, not an error. gunicorn's threads (config/gunicorn.conf.py) bound their number.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # the same backend, whose health check polls the socket instead of a SELECT 1 per request (see its module)
    DATABASES["default"]["ENGINE"] = "config.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default is shared by web, worker and beat processes: wait on locks instead of failing.
    # IMMEDIATE: a write transaction takes the lock when it begins, so concurrent writers wait (up to the
    # timeout) instead of failing at once with "database is locked" when a read lock is upgraded.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [  # Django's full set
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# API tokens live this long after they are issued (and die earlier on logout, password change, membership
# removal); failed logins allowed per username and per client address before a 429 (DRF rate strings).
TOKEN_TTL_S = env.int("TOKEN_TTL_S", default=12 * 3600)
LOGIN_THROTTLE_RATES = {
    "login_user": env.str("LOGIN_FAILURES_PER_USER", default="20/hour"),
    "login_ip": env.str("LOGIN_FAILURES_PER_IP", default="60/hour"),
}
# The throttles' counts live here: one web process can use the default; several need a shared cache
# (CACHE_URL=redis://127.0.0.1:6379/1).
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"  # `npm run build` output: index.html + assets/
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []
# collectstatic writes gzip and Brotli copies beside each file; whitenoise sends the one the browser accepts.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "labeling.web.storage.CompressedStaticStorage"},
}
# Vite's assets carry a content hash in their names (index-BwjSY3m1.js): cached for good, never revalidated.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/static/assets/.+-[A-Za-z0-9_-]{8}\.[A-Za-z0-9]+$"

LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request then gets 401 with a WWW-Authenticate header, not a bare 403.
        "labeling.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON nested deeper than labeling.api.parsers.MAX_JSON_DEPTH is a 400, not a RecursionError
    "DEFAULT_PARSER_CLASSES": [
        "labeling.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "labeling.api.schema.ErrorDocumentingAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "labeling.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Concord API",
    "DESCRIPTION": "Multi-reader grading and consensus for sacroiliac-joint imaging.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "labeling.api.schema.close_reader_project_view",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AssignmentStatusEnum": "labeling.models.Assignment.Status",
        "ImportJobStatusEnum": "labeling.models.ImportJob.Status",
        "ModelVersionStatusEnum": "ml.models.ModelVersion.Status",
        "TrainingRunStateEnum": "ml.models.TrainingRun.State",
        "ModelKindEnum": "ml.models.ModelKind",
        "QueueReasonEnum": "labeling.selectors.QUEUE_REASONS",
        "ReadyEnum": ["ready"],  # the status of a result the worker computed (reader study, agreement) …
        "ComputingEnum": ["computing"],  # … and of its 202 while it computes
    },
}

# Celery: the filesystem transport needs no server; Redis (or RabbitMQ) when CELERY_BROKER_URL is set.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=CELERY_BROKER_URL
    if CELERY_BROKER_URL.startswith("redis")
    else f"file://{VAR_DIR / 'celery' / 'results'}",
)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=6 * 3600)}
)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# A refit waits this long for more readings (each refit after the first full one is incremental: tens of ms)
CONSENSUS_DEBOUNCE_S = env.float("CONSENSUS_DEBOUNCE_S", default=0.5)
# Beat fits every consensus run that was updated incrementally in full again this often (labeling.services.consensus)
CONSENSUS_FULL_REFIT_EVERY_S = env.float("CONSENSUS_FULL_REFIT_EVERY_S", default=3600.0)

DICOMWEB_URL = env.str("DICOMWEB_URL", default="")
DICOM_FOLDER = Path(env.str("DICOM_FOLDER", default=str(VAR_DIR / "dicom")))
# Bounded waits on the DICOMweb server (Orthanc): a server that is down fails at once, one that accepts but does
# not answer within these many seconds is "image server unavailable" (502), never a request that hangs.
DICOMWEB_CONNECT_TIMEOUT_S = env.float("DICOMWEB_CONNECT_TIMEOUT_S", default=3.0)
DICOMWEB_READ_TIMEOUT_S = env.float("DICOMWEB_READ_TIMEOUT_S", default=30.0)
# How long a web process keeps the sequence names of the loaded schemes, which decide the series descriptions
# readers may see (seconds; 0 reads them for every series served). A scheme version loaded meanwhile shows its
# new names that much later; no name shows that no scheme asks for.
SCHEME_NAMES_CACHE_S = env.float("SCHEME_NAMES_CACHE_S", default=30.0)
# How long the DICOMweb proxy trusts "this user may see this study" (seconds; 0 checks every request).
DICOMWEB_AUTH_CACHE_S = env.float("DICOMWEB_AUTH_CACHE_S", default=10.0)
# The file whose change tells every web process of this site to forget its cached decisions (a revocation).
DICOMWEB_DECISIONS_EPOCH = Path(
    env.str("DICOMWEB_DECISIONS_EPOCH", default=str(VAR_DIR / "dicomweb-decisions.epoch"))
)
# Frames the proxy fetched from the DICOMweb server, kept on local disk for the next request of the same frame
# (labeling.dicom.frame_cache): the folder, its size in MiB (0: no cache) and an entry's lifetime in seconds.
FRAME_CACHE_DIR = Path(env.str("FRAME_CACHE_DIR", default=str(VAR_DIR / "frame-cache")))
FRAME_CACHE_MB = env.float("FRAME_CACHE_MB", default=2048.0)
FRAME_CACHE_TTL_S = env.float("FRAME_CACHE_TTL_S", default=86400.0)
# Other DICOMweb servers an admin may import from by URL (the configured one is always allowed).
DICOM_IMPORT_SOURCES = env.list("DICOM_IMPORT_SOURCES", default=[])
# De-identification on import (PS3.15 Annex E basic profile), the site default a project may override:
# on/off, dates keep|shift|remove (Retain Longitudinal Temporal Information options), Clean Descriptors.
DEIDENTIFY_ON_IMPORT = env.bool("DEIDENTIFY_ON_IMPORT", default=True)
DEIDENTIFY_DATES = env.str("DEIDENTIFY_DATES", default="remove")
DEIDENTIFY_CLEAN_DESCRIPTORS = env.bool("DEIDENTIFY_CLEAN_DESCRIPTORS", default=True)
ML_WEIGHTS_DIR = Path(env.str("ML_WEIGHTS_DIR", default=str(VAR_DIR / "models")))
# A running training run whose worker sent no heartbeat for this long is resumed by the next delivery.
# Where the gpu queue's workers evaluate and pre-read: "auto" (CUDA when the worker has a GPU), "cuda", "cpu".
ML_DEVICE = env.str("ML_DEVICE", default="auto")
ML_HEARTBEAT_STALE_S = env.int("ML_HEARTBEAT_STALE_S", default=120)
# A run queued (or running without a heartbeat) this long after its last dispatch lost its task message (a
# broker restart): the beat task that runs every ML_RECOVER_EVERY_S dispatches it again.
ML_REDISPATCH_AFTER_S = env.int("ML_REDISPATCH_AFTER_S", default=600)
ML_RECOVER_EVERY_S = env.int("ML_RECOVER_EVERY_S", default=300)
# Transactional outbox (labeling.services.outbox): beat publishes pending task messages this often; a drainer's
# lease on the rows it is publishing lasts this long; sent rows are kept this many days (then pruned).
OUTBOX_DRAIN_EVERY_S = env.float("OUTBOX_DRAIN_EVERY_S", default=10.0)
OUTBOX_LEASE_S = env.float("OUTBOX_LEASE_S", default=60.0)
OUTBOX_KEEP_DAYS = env.float("OUTBOX_KEEP_DAYS", default=7.0)
# Import jobs and consensus refits (labeling.services.jobs): a job whose worker sent no heartbeat for
# JOB_HEARTBEAT_STALE_S is taken for dead; the recovery step (beat every JOB_RECOVER_EVERY_S, and each worker at
# start) queues it again, and a job queued JOB_REDISPATCH_AFTER_S ago that no worker took is queued again.
JOB_HEARTBEAT_STALE_S = env.float("JOB_HEARTBEAT_STALE_S", default=60.0)
JOB_RECOVER_EVERY_S = env.float("JOB_RECOVER_EVERY_S", default=30.0)
JOB_REDISPATCH_AFTER_S = env.float("JOB_REDISPATCH_AFTER_S", default=300.0)
# Promotion floors per model kind, on the adjudicated gold: a model below its floor stays a candidate even when
# no model is promoted, and cannot be promoted by hand (a project's training policy may set its own floor).
# contour: fraction of joint lines within 2.76 mm RMSE; lesions: every lesion output's AUC; ctgrade: QWK.
ML_PROMOTION_FLOORS = {
    "contour": env.float("ML_FLOOR_CONTOUR", default=0.8),
    "lesions": env.float("ML_FLOOR_LESIONS", default=0.8),
    "ctgrade": env.float("ML_FLOOR_CTGRADE", default=0.6),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
