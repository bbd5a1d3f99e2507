"""Forms for setting up registries and their members (used by the Django admin)."""

from cryptography import x509
from django import forms

from registries.models import Membership, Registry
from registries.names import validate_repository_list

# Form fields that stand for the encrypted secret; audit records name them only as "secret".
SECRET_FIELDS = {"secret", "clear_secret"}


class RegistryForm(forms.ModelForm):
    """A registry's settings; the secret is write-only and never rendered back."""

    secret = forms.CharField(
        label="Password or token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_secret = forms.BooleanField(
        label="Clear the stored secret",
        required=False,
        help_text="Remove the password or token, e.g. when the registry no longer needs one.",
    )

    class Meta:
        model = Registry
        fields = [
            "name",
            "url",
            "verify_tls",
            "ca_bundle",
            "username",
            "catalog_mode",
            "repository_list",
            "sync_interval_minutes",
            "max_concurrency",
            "scan_new_images",
            "rescan_limit",
        ]
        labels = {"url": "URL", "ca_bundle": "CA bundle"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret"].help_text = (
            "Set. Leave blank to keep it; type a new one to replace it."
            if self.instance.has_secret
            else "Not set."
        )

    def clean_url(self):
        url = self.cleaned_data["url"]
        if not url.startswith(("http://", "https://")):
            raise forms.ValidationError("A registry URL starts with https:// or http://.")
        return url.rstrip("/")

    def clean_repository_list(self):
        repositories = self.cleaned_data["repository_list"]
        validate_repository_list(repositories)
        return repositories

    def clean_ca_bundle(self):
        pem = self.cleaned_data["ca_bundle"].strip()
        if pem:
            try:
                x509.load_pem_x509_certificates(pem.encode())
            except ValueError:
                raise forms.ValidationError(
                    "Not a PEM certificate bundle: paste one or more "
                    "-----BEGIN CERTIFICATE----- blocks."
                ) from None
        return pem

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("secret") and cleaned.get("clear_secret"):
            raise forms.ValidationError("Either type a new secret or clear it, not both.")
        if (
            cleaned.get("catalog_mode") == Registry.CatalogMode.LIST
            and not cleaned.get("repository_list", "").strip()
        ):
            self.add_error(
                "repository_list", "List at least one repository when the catalog is not used."
            )
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("clear_secret"):
            # bandit B105: this clears the secret, it sets no password.
            self.instance.secret = ""  # nosec B105
        elif self.cleaned_data.get("secret"):
            self.instance.secret = self.cleaned_data["secret"]
        return super().save(commit)

    def changed_setting_names(self):
        """Names of the changed settings, the secret as plain "secret" (never its value)."""
        names = [name for name in self.changed_data if name not in SECRET_FIELDS]
        if SECRET_FIELDS & set(self.changed_data):
            names.append("secret")
        return names


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["registry", "user", "group", "role"]

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("user")) == bool(cleaned.get("group")):
            raise forms.ValidationError("Choose a user or a group: exactly one of them.")
        return cleaned
