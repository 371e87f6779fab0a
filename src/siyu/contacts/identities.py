"""Turning an identity as a caller sends it into the form we store and look up by."""

from __future__ import annotations

from dataclasses import dataclass

from siyu.contacts import pii
from siyu.contacts.models import APP_SCOPED_KINDS, SENSITIVE_KINDS, IdentityKind
from siyu.errors import ValidationFailed


@dataclass(frozen=True)
class NormalIdentity:
    kind: str
    app_id: str
    value_hash: str
    plain: str  # normalised value; never stored as is for sensitive kinds

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.app_id, self.value_hash)

    def stored_value(self) -> str:
        return pii.encrypt(self.plain) if self.kind in SENSITIVE_KINDS else self.plain

    def display(self) -> str:
        if self.kind == IdentityKind.PHONE:
            return pii.mask_phone(self.plain)
        if self.kind == IdentityKind.EMAIL:
            return pii.mask_email(self.plain)
        return self.plain[:128]


# Django's Choices.values builds a new list on every access: too slow for a per-row check.
_KINDS = frozenset(IdentityKind.values)


def normalise_identity(kind: str, value: str, app_id: str = "") -> NormalIdentity:
    """Raises ValidationFailed naming what is wrong; the caller adds the field path."""
    if kind not in _KINDS:
        raise ValidationFailed("invalid_identity_kind", f"unknown identity kind {kind!r}")
    value = str(value).strip()
    if not value:
        raise ValidationFailed("empty_identity", f"{kind} value is empty")
    if kind == IdentityKind.PHONE:
        value = pii.normalise_phone(value)
    elif kind == IdentityKind.EMAIL:
        value = pii.normalise_email(value)
    if kind in APP_SCOPED_KINDS and not app_id:
        raise ValidationFailed("app_id_required", f"{kind} needs the app_id it was issued for")
    if kind not in APP_SCOPED_KINDS:
        app_id = ""
    # The hash covers kind and app so equal strings of different kinds never collide.
    return NormalIdentity(
        kind=kind,
        app_id=app_id,
        value_hash=pii.lookup_hash(f"{kind}|{app_id}|{value}"),
        plain=value,
    )
