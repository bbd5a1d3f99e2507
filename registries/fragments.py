"""htmx fragments: when a view answers with a piece of a page instead of the whole page."""

from django.views.decorators.vary import vary_on_headers

# Responses differ by these headers: caches (the browser's back button too) must keep apart
# the fragment and the full page of one URL.
vary_on_htmx = vary_on_headers("HX-Request", "HX-Target")


def wants_fragment(request, target=None):
    """An htmx request aimed at `target` (any target when None), not a history restore:
    restoring a page from history needs the whole page."""
    htmx = getattr(request, "htmx", None)
    if not htmx or htmx.history_restore_request:
        return False
    return target is None or htmx.target == target
