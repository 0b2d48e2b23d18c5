"""rtbank settings: everything comes from ``RTBANK_*`` environment variables with safe defaults.

Embedded defaults (SQLite in WAL mode, files under ``RTBANK_HOME``) need no configuration at all;
``RTBANK_DATABASE_URL=postgresql://…`` switches to PostgreSQL. Bad values are refused at start-up by the
system checks in :mod:`rtbank.checks`, never discovered later by a failing request.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtbank.config import database_from_url, env_bool, env_int, env_list, read_secret_key

BASE_DIR = Path(__file__).resolve().parent

# --- paths -----------------------------------------------------------------------------------------
HOME = Path(os.environ.get("RTBANK_HOME", "var")).resolve()
SPOOL_DIR = Path(os.environ.get("RTBANK_SPOOL", str(HOME / "spool")))
BLOB_DIR = Path(os.environ.get("RTBANK_BLOBS", str(HOME / "blobs")))
EXPORT_DIR = Path(os.environ.get("RTBANK_EXPORTS", str(HOME / "exports")))

# --- core Django -------------------------------------------------------------------------------------
DEBUG = env_bool("RTBANK_DEBUG", False)
SECRET_KEY = read_secret_key(HOME)
ALLOWED_HOSTS = env_list("RTBANK_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("RTBANK_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rtbank.apps.RtbankConfig",
    "rtbank.work",
    "rtbank.eventlog",
    "rtbank.institutions",
    "rtbank.catalog",
    "rtbank.ingest",
    "rtbank.projects",
    "rtbank.notifications",
    "rtbank.rules",
    "rtbank.analysis",
    "rtbank.harvest",
    "rtbank.audits",
    "rtbank.viewer",
    "rtbank.web",
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
    "rtbank.web.middleware.ContentSecurityPolicyMiddleware",
]

# --- accounts: two-factor (django-otp), login throttling (django-axes) — projects/web issue ----------
# Password login runs through AUTHENTICATION_BACKENDS; single sign-on is one more backend (and a button,
# RTBANK_SSO_LOGIN="label|url"). Whatever authenticated the user, rtbank.web.auth.TwoFactorMiddleware then
# asks for the TOTP code of anyone with a confirmed device, and sends site admins without one to set it up.
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "axes"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django_otp.middleware.OTPMiddleware") + 1, "rtbank.web.auth.TwoFactorMiddleware"
)
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes requires
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("RTBANK_LOGIN_FAILURES", 5)
AXES_COOLOFF_TIME = env_int("RTBANK_LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failed log-in stays visible to site admins (admin: axes)
AXES_LOCKOUT_TEMPLATE = "rtbank/locked.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = os.environ.get("RTBANK_TOTP_ISSUER", "rtbank")
RTBANK_SSO_LOGIN = [tuple(item.split("|", 1)) for item in env_list("RTBANK_SSO_LOGIN", []) if "|" in item]
# --- end accounts -----------------------------------------------------------------------------------------

ROOT_URLCONF = "rtbank.urls"
WSGI_APPLICATION = "rtbank.wsgi.application"

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
                "rtbank.web.context.site",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("RTBANK_DATABASE_URL", ""), HOME)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("RTBANK_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = None  # no collectstatic step: WhiteNoise serves the app folders (WHITENOISE_USE_FINDERS)
# Served by WhiteNoise from the app folders: no collectstatic step before `rtbank up`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# --- security (production profile unless RTBANK_DEBUG) ----------------------------------------------
SESSION_COOKIE_AGE = env_int("RTBANK_SESSION_SECONDS", 8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Behind TLS (the deployment case) cookies must never travel in clear; the local demo serves plain HTTP
# on 127.0.0.1 and says so with RTBANK_INSECURE_HTTP=1.
_HTTPS = not env_bool("RTBANK_INSECURE_HTTP", DEBUG)
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_SSL_REDIRECT = _HTTPS and env_bool("RTBANK_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if _HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS
SECURE_HSTS_PRELOAD = _HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe health over plain HTTP
if env_bool("RTBANK_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS: list[str] = []

# --- uploads and exports — projects/web issue ---------------------------------------------------------
# Uploaded files always go to disk (never held in memory), next to the spool on the same file system.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = str(HOME / "uploads")
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("RTBANK_UPLOAD_MAX_FILES", 5000)
# A project export up to this size is streamed to the browser as a zip; larger ones run in the background.
EXPORT_STREAM_MAX_BYTES = env_int("RTBANK_EXPORT_STREAM_MAX_MB", 512) * 1024 * 1024
EXPORT_STREAM_MAX_FILES = env_int("RTBANK_EXPORT_STREAM_MAX_FILES", 5000)
EXPORT_CHUNK_FILES = env_int("RTBANK_EXPORT_CHUNK_FILES", 200)  # files per background step (one transaction)
GRANT_MAX_DAYS = env_int("RTBANK_GRANT_MAX_DAYS", 3 * 365)  # the longest a grant given on the web may run
GRANT_REMIND_DAYS = env_int("RTBANK_GRANT_REMIND_DAYS", 14)  # remind this many days before a grant expires
# --- end uploads and exports ------------------------------------------------------------------------------

# --- DICOM -------------------------------------------------------------------------------------------
AE_TITLE = os.environ.get("RTBANK_AE_TITLE", "RTBANK")
DICOM_PORT = env_int("RTBANK_DICOM_PORT", 11112)
HTTP_PORT = env_int("RTBANK_HTTP_PORT", 8000)
BIND_ADDRESS = os.environ.get("RTBANK_BIND", "127.0.0.1")
# Accept any calling AE title from any host: for a local demo only, never on a network.
ALLOW_ANY_CALLING_AE = env_bool("RTBANK_ALLOW_ANY_AE", False)
# Free space kept in reserve on the spool file system: below it the receiver answers
# "out of resources" (0xA700) instead of filling the disk.
SPOOL_RESERVE_MB = env_int("RTBANK_SPOOL_RESERVE_MB", 512)
# Seconds a DICOM association may stay idle (large doses over slow links need generous values).
DICOM_TIMEOUT_S = env_int("RTBANK_DICOM_TIMEOUT", 120)

# --- work --------------------------------------------------------------------------------------------
WORK_LEASE_S = env_int("RTBANK_WORK_LEASE", 120)  # s; a killed worker's rows are taken again after this
WORK_MAX_ATTEMPTS = env_int("RTBANK_WORK_MAX_ATTEMPTS", 10)
WORK_BATCH = env_int("RTBANK_WORK_BATCH", 64)
WORK_POLL_S = float(os.environ.get("RTBANK_WORK_POLL", "0.5"))

# --- harvest (issue 8; owner: harvester) ------------------------------------------------------------
# Per-source politeness (parallel associations, pauses, time windows, C-MOVE or C-GET, query levels)
# lives in each harvest node's options; these are the process-wide defaults and limits.
HARVEST_AE_TITLE = os.environ.get("RTBANK_HARVEST_AE", AE_TITLE)  # calling AE title towards sources
HARVEST_LEASE_S = env_int("RTBANK_HARVEST_LEASE", 900)  # s; one step may move a whole series
HARVEST_MAX_ATTEMPTS = env_int("RTBANK_HARVEST_MAX_ATTEMPTS", 10)  # per step, as the paper
HARVEST_BACKOFF_S = float(os.environ.get("RTBANK_HARVEST_BACKOFF", "5"))  # first retry delay, doubling
HARVEST_BACKOFF_CAP_S = float(os.environ.get("RTBANK_HARVEST_BACKOFF_CAP", "3600"))
HARVEST_DIMSE_TIMEOUT_S = env_int("RTBANK_HARVEST_DIMSE_TIMEOUT", 120)
HARVEST_ARRIVAL_TIMEOUT_S = env_int("RTBANK_HARVEST_ARRIVAL_TIMEOUT", 600)  # moved object not filed by then
HARVEST_POLL_S = float(os.environ.get("RTBANK_HARVEST_POLL", "0.05"))
# --- end harvest --------------------------------------------------------------------------------------

# --- mail --------------------------------------------------------------------------------------------
EMAIL_HOST = os.environ.get("RTBANK_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = env_int("RTBANK_SMTP_PORT", 25)
EMAIL_HOST_USER = os.environ.get("RTBANK_SMTP_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("RTBANK_SMTP_PASSWORD", "")
EMAIL_USE_TLS = env_bool("RTBANK_SMTP_TLS", False)
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("RTBANK_MAIL_FROM", "rtbank@localhost")
SITE_URL = os.environ.get("RTBANK_SITE_URL", f"http://127.0.0.1:{HTTP_PORT}")

# --- rules, forwarding outbox, cleanup, notifications, scheduler (issue 5; owner: rules) ------------
# Forwarding (C-STORE SCU): a failed send is retried after about base · 2^(n-1) s (at most cap) until the
# attempt cap, then waits as failed in the outbox for a person's "resubmit".
FORWARD_MAX_ATTEMPTS = env_int("RTBANK_FORWARD_MAX_ATTEMPTS", 12)
FORWARD_BACKOFF_S = float(os.environ.get("RTBANK_FORWARD_BACKOFF", "30"))
FORWARD_BACKOFF_CAP_S = float(os.environ.get("RTBANK_FORWARD_BACKOFF_CAP", "3600"))
# Seconds to wait for each answer of the destination (a 100 MB dose over a slow link takes minutes).
FORWARD_TIMEOUT_S = env_int("RTBANK_FORWARD_TIMEOUT", 600)
# One send may take this long before another worker takes the row again (on PostgreSQL leases are renewed).
FORWARD_LEASE_S = env_int("RTBANK_FORWARD_LEASE", 4 * 3600)
OUTBOX_DIR = Path(
    os.environ.get("RTBANK_OUTBOX", str(HOME / "outbox"))
)  # copies of files queued by other areas
# Cleanup: unretained data older than AGE days is deleted NOTICE days after its institution's data managers
# were told, into the trash, whose files are removed after TRASH days.
CLEANUP_AGE_DAYS = env_int("RTBANK_CLEANUP_AGE_DAYS", 90)
CLEANUP_NOTICE_DAYS = env_int("RTBANK_CLEANUP_NOTICE_DAYS", 7)
CLEANUP_TRASH_DAYS = env_int("RTBANK_CLEANUP_TRASH_DAYS", 30)
TRASH_DIR = Path(os.environ.get("RTBANK_TRASH", str(HOME / "trash")))
# Suspensions of grants and projects that expired within this many days are announced to the people concerned
# (reminders before expiry are the projects area's: rtbank.projects.services.remind_expiring_grants).
SUSPENSION_NOTICE_DAYS = env_int("RTBANK_SUSPENSION_NOTICE_DAYS", 30)
# Rules: a dry run over stored data evaluates at most this many objects (the page says when it stopped).
RULES_DRY_RUN_LIMIT = env_int("RTBANK_RULES_DRY_RUN_LIMIT", 20000)
# SMS: an HTTP webhook of your SMS provider (POST JSON {"to", "text", "sender"}); empty = no SMS.
SMS_WEBHOOK_URL = os.environ.get("RTBANK_SMS_WEBHOOK_URL", "")
SMS_WEBHOOK_TOKEN = os.environ.get("RTBANK_SMS_WEBHOOK_TOKEN", "")
SMS_SENDER = os.environ.get("RTBANK_SMS_SENDER", "rtbank")
SMS_TIMEOUT_S = env_int("RTBANK_SMS_TIMEOUT", 10)
# Scheduled jobs run inside the worker (rtbank.work.scheduler):
# when = daily@HH:MM | hourly | every:SECONDS | off.
SCHEDULE = {
    "cleanup": {
        "task": "rtbank.rules.cleanup.run_scheduled",
        "when": os.environ.get("RTBANK_SCHEDULE_CLEANUP", "daily@02:00"),
    },
    "expiry": {
        "task": "rtbank.rules.expiry.run_scheduled",
        "when": os.environ.get("RTBANK_SCHEDULE_EXPIRY", "daily@01:30"),
    },
    "digest": {
        "task": "rtbank.notifications.services.queue_digests",
        "when": os.environ.get("RTBANK_SCHEDULE_DIGEST", "daily@07:00"),
    },
}
SCHEDULER_POLL_S = float(os.environ.get("RTBANK_SCHEDULER_POLL", "30"))
SCHEDULER_JOB_LEASE_S = env_int("RTBANK_SCHEDULER_JOB_LEASE", 1800)
# --- end of issue 5 block --------------------------------------------------------------------------------

# --- analysis: DVH service, ROI mapping, protocol QA (issue 6; owner: analysis) ---------------------------
# Metrics stored for every ROI of every plan besides the engine's default set and each project's own list
# (canonical names, see docs/dvh.md); a project can offer only metrics that are stored.
ANALYSIS_METRICS = env_list(
    "RTBANK_ANALYSIS_METRICS",
    ["D98%", "D2%", "V5Gy[%]", "V10Gy[%]", "V20Gy[%]", "V30Gy[%]", "V40Gy[%]", "V50Gy[%]", "V60Gy[%]"],
)
# --- end of issue 6 block --------------------------------------------------------------------------------

# --- logging -----------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("RTBANK_LOG_LEVEL", "INFO")},
    "loggers": {
        # pynetdicom logs every PDU at INFO; keep the console readable.
        "pynetdicom": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- accounts logging — projects/web issue: django-axes reports every log-in at INFO -----------------
LOGGING["loggers"]["axes"] = {"level": "WARNING"}
