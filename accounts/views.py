import math

from axes.helpers import get_cool_off
from django.shortcuts import render


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a locked account: a page saying how long to wait (HTTP 429)."""
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else None
    return render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
