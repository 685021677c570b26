"""Accounts and production settings (issue 13, holes 8 and 9): failed-login throttling on every login and
token path, tokens with a lifetime that logout, a password change and a membership removal revoke, Django's
full password validator set, and production settings that ``check --deploy`` passes."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.labeling.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()
    yield
    cache.clear()  # other tests log in as the same usernames


def _token_attempt(username: str, password: str):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password}, format="json")


def _login_attempt(username: str, password: str):
    return APIClient().post("/api/auth/login/", {"username": username, "password": password}, format="json")


def _admin_attempt(username: str, password: str):
    return Client().post("/admin/login/", {"username": username, "password": password})


@pytest.mark.parametrize(
    "attempt", [_token_attempt, _login_attempt, _admin_attempt], ids=["token", "login", "admin"]
)
def test_30_wrong_passwords_in_a_row_meet_a_429_with_retry_after(db, attempt):
    UserFactory(username="victim", password="right-password-123", is_staff=True)
    codes = [attempt("victim", f"guess-{i}").status_code for i in range(30)]
    assert 429 in codes, codes
    first = codes.index(429)
    assert set(codes[:first]) <= {200, 400} and set(codes[first:]) == {429}, codes
    locked = attempt("victim", "right-password-123")
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    print(
        f"{attempt.__name__}: first 429 after {first} wrong passwords, Retry-After {locked['Retry-After']} s"
    )


def test_failures_from_one_address_are_throttled_across_usernames(db):
    codes = [_token_attempt(f"nobody{i}", "x").status_code for i in range(80)]
    assert codes[0] == 400 and codes[-1] == 429


def test_right_passwords_are_never_throttled(db):
    UserFactory(username="busy", password="right-password-123")
    assert {_token_attempt("busy", "right-password-123").status_code for _ in range(40)} == {200}


def _authed(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_tokens_expire(db, settings):
    UserFactory(username="scripter", password="right-password-123")
    body = _token_attempt("scripter", "right-password-123").json()
    assert _authed(body["token"]).get("/api/auth/me/").status_code == 200
    Token.objects.filter(key=body["token"]).update(
        created=timezone.now() - timedelta(seconds=settings.TOKEN_TTL_S + 1)
    )
    expired = _authed(body["token"]).get("/api/auth/me/")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    fresh = _token_attempt("scripter", "right-password-123").json()["token"]
    assert fresh != body["token"] and _authed(fresh).get("/api/auth/me/").status_code == 200


def test_logout_revokes_the_token(db):
    UserFactory(username="scripter", password="right-password-123")
    key = _token_attempt("scripter", "right-password-123").json()["token"]
    assert _authed(key).post("/api/auth/logout/").status_code == 204
    assert _authed(key).get("/api/auth/me/").status_code == 401


def test_a_password_change_revokes_the_token(db):
    user = UserFactory(username="scripter", password="right-password-123")
    key = _token_attempt("scripter", "right-password-123").json()["token"]
    user.set_password("another-password-456")
    user.save()
    assert _authed(key).get("/api/auth/me/").status_code == 401


def test_removing_a_membership_revokes_the_token(world, client_for):
    world.reader.set_password("right-password-123")
    world.reader.save()
    key = _token_attempt("reader", "right-password-123").json()["token"]
    worklist = f"/api/projects/{world.project.pk}/worklist/"
    assert _authed(key).get(worklist).status_code == 200
    membership = world.project.memberships.get(user=world.reader)
    assert (
        client_for(world.admin)
        .post(f"/api/projects/{world.project.pk}/members/{membership.pk}/remove/")
        .status_code
        == 200
    )
    assert _authed(key).get(worklist).status_code == 401


def test_the_full_password_validator_set(db):
    user = UserFactory(username="marianne", password="x")
    for weak in ("short1!", "123456789012345", "password1234", "marianne-2026"):
        with pytest.raises(ValidationError):
            validate_password(weak, user)
    validate_password("correct horse battery staple", user)


# --- hole 9: production settings --------------------------------------------------------------------------

PRODUCTION = {  # README, "Production settings"
    "DEBUG": "false",
    "HTTPS": "true",
    "ALLOWED_HOSTS": "concord.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://concord.example.org",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    environment.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    done = _manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    readme = (ROOT / "README.md").read_text()
    for name, value in PRODUCTION.items():
        assert f"{name}={value}" in readme


def test_no_placeholder_secret_is_shipped_or_accepted():
    example = (ROOT / ".env.example").read_text()
    (line,) = [ln for ln in example.splitlines() if ln.startswith("SECRET_KEY=")]
    assert line == "SECRET_KEY="
    done = _manage("check", SECRET_KEY="change-me")
    assert done.returncode != 0 and "placeholder" in done.stderr


def test_responses_carry_a_content_security_policy(db):
    response = Client().get("/api/auth/csrf/")
    policy = response["Content-Security-Policy"]
    assert (
        "default-src 'self'" in policy
        and "frame-ancestors 'none'" in policy
        and "object-src 'none'" in policy
    )
