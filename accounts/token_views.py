"""The "My API tokens" page: users issue and revoke their own tokens."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import tokens
from accounts.models import ApiToken

EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("", "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. “CI cleanup”.")
    read_only = forms.BooleanField(
        required=False, help_text="Only reads: any change made with it is refused."
    )
    expires_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
        label="Expires after",
    )


@login_required
def token_list(request):
    new_token = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            _, new_token = tokens.issue(request.user, request=request, **form.cleaned_data)
            form = TokenForm()
    else:
        form = TokenForm()
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user),
        # Shown in this answer only; it is not stored anywhere it could be read again.
        "new_token": new_token,
    }
    response = render(request, "accounts/tokens.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.revoke(token, request=request)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("api-tokens")
