"""Personal data protection: phone normalisation, keyed hashing for lookup, encryption at rest
and masking for display.

The hash key and the encryption key are both derived from ``settings.FIELD_ENCRYPTION_KEY`` so
that one secret protects the data; lookups never need to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from siyu.errors import ValidationFailed

_DIGITS = re.compile(r"\d+")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@lru_cache(maxsize=4)
def _keys(secret: str) -> tuple[bytes, bytes]:
    master = hashlib.sha256(secret.encode()).digest()
    hash_key = hmac.new(master, b"siyu-lookup-hash", hashlib.sha256).digest()
    enc_key = hmac.new(master, b"siyu-field-encryption", hashlib.sha256).digest()
    return hash_key, enc_key


@lru_cache(maxsize=4)
def _lookup_pads(secret: str) -> tuple[Any, Any]:
    """HMAC-SHA256's inner and outer hashes with the key already absorbed (RFC 2104), copied per
    value: the same digest as ``hmac.new``, without setting the key up for every identity."""
    key = _keys(secret)[0].ljust(64, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(
        bytes(b ^ 0x5C for b in key)
    )


def normalise_phone(raw: str) -> str:
    """Mainland mobiles become +86XXXXXXXXXXX; other numbers must carry their + country code."""
    text = str(raw).strip()
    digits = "".join(_DIGITS.findall(text))
    if text.startswith("00"):
        digits, text = digits[2:], "+" + digits[2:]
    if digits.startswith("86") and _MAINLAND_MOBILE.match(digits[2:]):
        return "+" + digits
    if _MAINLAND_MOBILE.match(digits) and not text.startswith("+"):
        return "+86" + digits
    if text.startswith("+") and 8 <= len(digits) <= 15:
        return "+" + digits
    raise ValidationFailed(
        "invalid_phone", f"{raw!r} is not a valid phone number (mainland mobile or +country code)."
    )


def normalise_email(raw: str) -> str:
    value = str(raw).strip().lower()
    if not _EMAIL.match(value):
        raise ValidationFailed("invalid_email", f"{raw!r} is not a valid email address.")
    return value


def lookup_hash(value: str) -> str:
    inner, outer = _lookup_pads(settings.FIELD_ENCRYPTION_KEY)
    inner, outer = inner.copy(), outer.copy()
    inner.update(value.encode())
    outer.update(inner.digest())
    return outer.hexdigest()


def encrypt(value: str) -> str:
    _, enc_key = _keys(settings.FIELD_ENCRYPTION_KEY)
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(
        nonce + AESGCM(enc_key).encrypt(nonce, value.encode(), None)
    ).decode()


def decrypt(token: str) -> str:
    _, enc_key = _keys(settings.FIELD_ENCRYPTION_KEY)
    raw = base64.urlsafe_b64decode(token.encode())
    return AESGCM(enc_key).decrypt(raw[:12], raw[12:], None).decode()


def mask_phone(normalised: str) -> str:
    """+8613812345678 -> 138****5678 (the form operators know)."""
    local = normalised[3:] if normalised.startswith("+86") else normalised
    if len(local) < 7:
        return "*" * len(local)
    return f"{local[:3]}****{local[-4:]}"


def mask_email(normalised: str) -> str:
    name, _, domain = normalised.partition("@")
    return f"{name[:1]}***@{domain}"
