"""The adapter interface every channel implements.

An adapter turns an ``Outbound`` (plain data, no ORM) into a ``ProviderResult``. It never
touches the outbox: the dispatcher decides retries, suppression and status. What a channel
needs to fit:

- ``rate_per_second``: the dispatcher paces sends per channel within a worker.
- ``send_batch``: a provider with a batch API (WeCom's mass send) overrides it; the default
  sends one at a time.
- ``address_kind``: which address a contact must have ("phone", "email" or None).
- ``parse_receipts``: a provider's delivery callback, verified and turned into ``Receipt``s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from siyu.errors import DomainError, ValidationFailed

#: Receipts older or newer than this are refused, so a captured callback cannot be replayed.
RECEIPT_TOLERANCE_SECONDS = 300
RECEIPT_STATUSES = ("delivered", "read", "clicked")


@dataclass(frozen=True)
class Outbound:
    message_id: int
    idempotency_key: str
    contact_id: int
    to: str  # phone or e-mail address; empty for channels that address by contact id
    subject: str
    body: str
    #: The template's attachments, plain data: {"product": {"id", "sku", "name", "price"},
    #: "miniprogram": {"appid", "path"}, "image": {"url"} or {"file", "name", "size"}}
    #: (a file under the data dir's media folder); None without any.
    attachments: dict[str, Any] | None = None


@dataclass(frozen=True)
class ProviderResult:
    ok: bool
    provider_message_id: str = ""
    error: str = ""
    retryable: bool = False

    @classmethod
    def sent(cls, provider_message_id: str) -> ProviderResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def retry(cls, error: str) -> ProviderResult:
        return cls(ok=False, error=error, retryable=True)

    @classmethod
    def fail(cls, error: str) -> ProviderResult:
        return cls(ok=False, error=error, retryable=False)


@dataclass(frozen=True)
class Receipt:
    status: str
    at: datetime
    provider_message_id: str = ""
    message_id: int | None = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>": the timestamp is signed too, so it cannot be
    swapped to replay an old request."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {"X-Siyu-Timestamp": timestamp, "X-Siyu-Signature": sign(secret, timestamp, body)}


class ChannelAdapter:
    address_kind: ClassVar[str | None] = None

    def __init__(self, settings: Mapping[str, Any], *, rate_per_second: float = 10.0):
        self.settings = settings
        self.rate_per_second = rate_per_second

    def send(self, message: Outbound) -> ProviderResult:
        raise NotImplementedError

    def send_batch(self, messages: Sequence[Outbound]) -> list[ProviderResult]:
        return [self.send(m) for m in messages]

    def parse_receipts(
        self, headers: Mapping[str, str], body: bytes, *, now: float
    ) -> list[Receipt]:
        """siyu's own receipt format, signed with the channel's ``secret`` like the webhook:
        ``{"receipts": [{"provider_message_id" | "message_id", "status", "at"}]}``."""
        secret = self.settings.get("secret", "")
        timestamp = headers.get("X-Siyu-Timestamp", "")
        signature = headers.get("X-Siyu-Signature", "")
        if (
            not secret
            or not timestamp.isdigit()
            or not hmac.compare_digest(sign(secret, timestamp, body), signature)
        ):
            raise DomainError(
                "bad_signature", "The receipt's X-Siyu-Signature does not match.", http_status=401
            )
        if abs(now - int(timestamp)) > RECEIPT_TOLERANCE_SECONDS:
            raise DomainError(
                "stale_receipt", "X-Siyu-Timestamp is more than 5 minutes off.", http_status=401
            )
        try:
            items = json.loads(body)["receipts"]
            return [_receipt(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed("bad_receipt", f"Unreadable receipt body: {exc}") from exc


def _receipt(item: Mapping[str, Any]) -> Receipt:
    if item["status"] not in RECEIPT_STATUSES:
        raise ValueError(
            f"status must be one of {', '.join(RECEIPT_STATUSES)}, not {item['status']!r}"
        )
    at = datetime.fromisoformat(item["at"]) if item.get("at") else datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("'at' needs a UTC offset")
    message_id = item.get("message_id")
    return Receipt(
        status=item["status"],
        at=at,
        provider_message_id=str(item.get("provider_message_id") or ""),
        message_id=int(message_id) if message_id is not None else None,
    )
