"""The distribution grammar of repository names, tags and digests: one check for every way in.

Names from users (API, forms, settings) are checked before use, and registries/client.py checks
again before it builds a URL, so a name like "../x" never becomes a request path.
"""

import re

from django.core.exceptions import ValidationError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_NAME = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
MAX_REPOSITORY_NAME = 255


def is_repository_name(name):
    return len(name) <= MAX_REPOSITORY_NAME and REPOSITORY_NAME.fullmatch(name) is not None


def is_tag_name(name):
    return TAG_NAME.fullmatch(name) is not None


def is_digest(reference):
    return len(reference) <= 255 and DIGEST.fullmatch(reference) is not None


def validate_repository_name(name):
    if not is_repository_name(name):
        raise ValidationError(
            f"{name[:80]!r} is not a repository name: lower-case letters and digits, "
            f"separated by '.', '_', '__', '-' or '/', at most {MAX_REPOSITORY_NAME} characters.",
            code="invalid_repository",
        )


def validate_tag_name(name):
    if not is_tag_name(name):
        raise ValidationError(
            f"{name[:80]!r} is not a tag: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'.",
            code="invalid_tag",
        )


def validate_digest(reference):
    if not is_digest(reference):
        raise ValidationError(
            f"{reference[:80]!r} is not a digest (algorithm:hex, e.g. sha256:…).",
            code="invalid_digest",
        )


def validate_repository_list(text):
    """A registry's list of repositories, one a line; every bad line is named."""
    errors = []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        try:
            validate_repository_name(line)
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors, code="invalid_repository")
