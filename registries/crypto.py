"""Encryption of registry credentials at rest.

MultiFernet with the keys of REGUI_ENCRYPTION_KEYS: the first key encrypts, every key
decrypts, so keys can be rotated. A value that no key opens raises; it is never handed
back as if it were the secret.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

UNDECRYPTABLE = (
    "a stored registry secret cannot be decrypted with any key of REGUI_ENCRYPTION_KEYS "
    "(was a key removed before rotate_encryption_keys ran?)"
)


class SecretDecryptionError(Exception):
    """The stored ciphertext cannot be opened with any configured key."""


@cache
def _fernet(keys):
    if not keys:
        raise ImproperlyConfigured("REGUI_ENCRYPTION_KEYS is not set (see .env.example)")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "REGUI_ENCRYPTION_KEYS holds a malformed key: each must be 32 url-safe base64 bytes "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from None


def fernet():
    # Blanks around commas ("key1, key2") are a common way to write the list; they are no key.
    keys = (key.strip() for key in settings.REGUI_ENCRYPTION_KEYS)
    return _fernet(tuple(key for key in keys if key))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(UNDECRYPTABLE) from None


def rotate(ciphertext: str) -> str:
    """The same secret, encrypted with the first (newest) key."""
    try:
        return fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(UNDECRYPTABLE) from None
