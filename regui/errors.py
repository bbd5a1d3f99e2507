"""Django's error handlers: JSON under /api/ (clients parse it), the HTML pages elsewhere."""

from django.http import JsonResponse
from django.views import defaults


def _json_under_api(status, detail, html_view):
    def handler(request, *args, **kwargs):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status)
        return html_view(request, *args, **kwargs)

    return handler


bad_request = _json_under_api(400, "Bad request.", defaults.bad_request)
permission_denied = _json_under_api(403, "Permission denied.", defaults.permission_denied)
page_not_found = _json_under_api(404, "Not found.", defaults.page_not_found)
server_error = _json_under_api(500, "Internal server error.", defaults.server_error)
