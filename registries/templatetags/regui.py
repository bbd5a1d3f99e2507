"""Template helpers shared by every RegUI page: sizes, digests, dates, sorting, badges."""

from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()

SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
SEVERITIES = ("critical", "high", "medium", "low", "unknown")


@register.filter
def bytes_h(value):
    """Bytes in decimal units, as `docker images` shows them (1 kB = 1000 B)."""
    if value is None or value == "":
        return "—"
    size = float(value)
    for unit in SIZE_UNITS:
        if abs(size) < 1000 or unit == SIZE_UNITS[-1]:
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""  # unreachable: the loop returns on its last unit


@register.filter
def short_digest(digest):
    """`sha256:0123…` -> the first 12 hex digits, as Docker prints image ids."""
    return str(digest).split(":", 1)[-1][:12] if digest else ""


@register.simple_tag
def moment(value, empty="unknown"):
    """`3 days ago`, with the exact time on hover; `empty` when there is no date."""
    if not value:
        return format_html('<span class="text-body-tertiary">{}</span>', empty)
    now = timezone.now()
    if abs((now - value).total_seconds()) < 60:
        when = "just now"
    elif value > now:
        when = f"in {timesince(now, value, depth=1)}"
    else:
        when = f"{timesince(value, now, depth=1)} ago"
    exact = date_format(timezone.localtime(value), "Y-m-d H:i:s T")
    return format_html(
        '<time datetime="{}" title="{}" data-bs-toggle="tooltip">{}</time>',
        value.isoformat(),
        exact,
        when.replace("\xa0", " "),
    )


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters changed (None or "" removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value not in (None, ""):
            params[key] = value
    encoded = urlencode(sorted(params.items()))
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_header(context, label, key, align=""):
    """A table header that sorts by `key`, toggling direction; the active one shows an arrow."""
    current = context.get("sort", "")
    descending = current == f"-{key}"
    active = current in (key, f"-{key}")
    target = key if descending else f"-{key}" if active else key
    icon = ""
    if active:
        icon = "bi-sort-down" if descending else "bi-sort-up"
    url = query(context, sort=target, page=None)
    return format_html(
        '<th scope="col" class="{}" aria-sort="{}"><a class="sort-link{}" href="{}" '
        'data-sort="{}">{}<i class="bi {} ms-1"></i></a></th>',
        align,
        ("descending" if descending else "ascending") if active else "none",
        " active" if active else "",
        url,
        key,
        label,
        icon,
    )


@register.inclusion_tag("includes/severity_badges.html")
def severity_badges(summary, compact=False):
    """Badges for a scan summary ({critical, high, medium, low, unknown, stale...}) or none."""
    counts = []
    if summary:
        counts = [(name, summary.get(name) or 0) for name in SEVERITIES]
    return {"summary": summary, "counts": counts, "compact": compact}


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def percent_of(part, whole):
    return round(100 * part / whole) if whole else 0


@register.filter
def elided_pages(page):
    """Page numbers around the current one, with "…" for the gaps."""
    return page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)


@register.filter
def basename(name):
    """The last component of a repository name: `team/app` -> `app`."""
    return str(name).rsplit("/", 1)[-1]


@register.filter
def first_word(text):
    return str(text).split(" ", 1)[0]


@register.filter
def slice_after_first_word(text):
    parts = str(text).split(" ", 1)
    return f" {parts[1]}" if len(parts) > 1 else ""
