"""Forms of the browsing UI (the registry admin forms are in registries/forms.py)."""

import re

from django import forms

from registries.cleanup import CleanupRules, InvalidRule, Syntax, compile_pattern


def _split_patterns(text):
    return tuple(part for part in re.split(r"[,\s]+", text or "") if part)


class CleanupForm(forms.Form):
    syntax = forms.ChoiceField(
        label="Patterns are",
        choices=Syntax.CHOICES,
        initial=Syntax.GLOB,
        widget=forms.RadioSelect,
    )
    repository_pattern = forms.CharField(
        label="Repositories",
        initial="*",
        max_length=300,
        help_text="Which repositories to clean, e.g. <code>team/*</code>. Matches whole names.",
    )
    tag_pattern = forms.CharField(
        label="Tags",
        initial="*",
        max_length=300,
        help_text="Which tags may go, e.g. <code>pr-*</code> or <code>*-rc*</code>.",
    )
    older_than_days = forms.IntegerField(
        label="Older than (days)",
        required=False,
        min_value=0,
        max_value=36500,
        help_text="By the image's created date. Tags without a created date are never "
        "removed by an age rule.",
    )
    keep_newest = forms.IntegerField(
        label="Keep the newest",
        required=False,
        min_value=0,
        max_value=100000,
        help_text="Images per repository, ranked by created date (not by push order).",
    )
    protected = forms.CharField(
        label="Protected tags",
        required=False,
        initial="latest",
        max_length=1000,
        help_text="Never deleted, whatever the other rules say. Patterns, separated by commas "
        "or spaces, e.g. <code>latest, v*.*.*</code>.",
    )

    def __init__(self, *args, registry=None, **kwargs):
        self.registry = registry
        super().__init__(*args, **kwargs)

    def _check_pattern(self, name):
        value = self.cleaned_data.get(name, "").strip()
        syntax = self.cleaned_data.get("syntax", Syntax.GLOB)
        try:
            compile_pattern(value, syntax)
        except InvalidRule as error:
            raise forms.ValidationError(str(error)) from None
        return value

    def clean_repository_pattern(self):
        return self._check_pattern("repository_pattern")

    def clean_tag_pattern(self):
        return self._check_pattern("tag_pattern")

    def clean_protected(self):
        patterns = _split_patterns(self.cleaned_data.get("protected"))
        syntax = self.cleaned_data.get("syntax", Syntax.GLOB)
        for pattern in patterns:
            try:
                compile_pattern(pattern, syntax)
            except InvalidRule as error:
                raise forms.ValidationError(str(error)) from None
        return patterns

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self._rules = CleanupRules(
                repository_pattern=cleaned["repository_pattern"],
                tag_pattern=cleaned["tag_pattern"],
                syntax=cleaned["syntax"],
                older_than_days=cleaned.get("older_than_days"),
                keep_newest=cleaned.get("keep_newest"),
                protected=cleaned.get("protected", ()),
            )
        except InvalidRule as error:
            raise forms.ValidationError(str(error)) from None
        return cleaned

    def rules(self):
        return self._rules
