"""A request id on every log line, carried from the web request into the tasks it starts."""

import contextvars
import re
import uuid

from celery.signals import before_task_publish, task_postrun, task_prerun

current_request_id = contextvars.ContextVar("request_id", default="-")

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TASK_HEADER = "regui_request_id"


class RequestIdMiddleware:
    """Takes a sane X-Request-ID from the proxy or makes one, and echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _VALID_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdLogFilter:
    """Adds `request_id` to every log record (a filter, so third-party loggers get it too)."""

    def filter(self, record):
        record.request_id = current_request_id.get()
        return True


@before_task_publish.connect
def _send_request_id(headers=None, **kwargs):
    if headers is not None:
        headers.setdefault(TASK_HEADER, current_request_id.get())


@task_prerun.connect
def _receive_request_id(task=None, **kwargs):
    request_id = getattr(task.request, TASK_HEADER, None) if task else None
    task.request._regui_token = current_request_id.set(request_id or f"task-{task.request.id}")


@task_postrun.connect
def _forget_request_id(task=None, **kwargs):
    token = getattr(task.request, "_regui_token", None)
    if token is not None:
        current_request_id.set("-")
