from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "registries"

    def ready(self):
        from registries import crypto

        crypto.fernet()  # a malformed REGUI_ENCRYPTION_KEYS stops start-up here, not at first use
