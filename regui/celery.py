"""The Celery application shared by the web process, the workers and beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regui.settings")

app = Celery("regui")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Carries the web request's id into the tasks it starts (connects Celery signals).
import regui.request_id  # noqa: E402,F401
