from django.http import JsonResponse
from django.views import defaults


def server_error(request, *args, **kwargs):
    """Django's handler500: JSON under /api/ (clients parse it), the HTML page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request, *args, **kwargs)
