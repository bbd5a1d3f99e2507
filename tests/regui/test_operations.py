"""Health, metrics, security headers, request ids and deployment checks."""

import os
import secrets
import socket
import subprocess
import sys

import pytest
from django.test import override_settings

from regui.celery import app as celery_app
from tests.regui.test_settings import ROOT

pytestmark = pytest.mark.django_db


def test_live_answers_without_login(client):
    response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_checks_database_and_broker(client):
    response = client.get("/health/ready")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ok"


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ready_is_503_with_the_reason_when_the_broker_is_down(client, monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{_closed_port()}/0")

    response = client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["problems"][0].startswith("broker: ")


def test_metrics_from_loopback(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    body = response.content.decode()
    assert "regui_registries" in body
    assert "regui_jobs" in body
    assert "django_http_requests_total" in body


def test_metrics_refused_from_elsewhere(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403


@override_settings(REGUI_METRICS_TOKEN="scrape-me")
def test_metrics_with_a_token(client):
    assert client.get("/metrics").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200


def test_security_headers(client):
    response = client.get("/health/live")

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_request_id_is_echoed_or_made(client):
    assert client.get("/health/live", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    made = client.get("/health/live", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]
    assert len(made) == 32


def test_production_settings_pass_check_deploy():
    # Browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; production never does.
    skip = {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        REGUI_HTTPS="true",
        ALLOWED_HOSTS="regui.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
