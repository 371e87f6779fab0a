"""Webhook: a signed JSON POST per message.

Headers: ``X-Siyu-Timestamp``, ``X-Siyu-Signature`` (``sha256=`` HMAC-SHA256 of
"<timestamp>.<body>" with the channel's secret) and ``Idempotency-Key``, which stays the same
across retries and across a resend after a worker crash, so the receiver can drop repeats."""

from __future__ import annotations

import json

from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult, signed_headers
from siyu.messaging.channels.transport import DEFAULT_TIMEOUT_SECONDS, post_json


class WebhookAdapter(ChannelAdapter):
    def send(self, message: Outbound) -> ProviderResult:
        body = json.dumps(
            {
                "message_id": message.message_id,
                "idempotency_key": message.idempotency_key,
                "contact_id": message.contact_id,
                "subject": message.subject,
                "body": message.body,
                "attachments": message.attachments or {},
            },
            ensure_ascii=False,
        ).encode()
        headers = {
            **signed_headers(self.settings.get("secret", ""), body),
            "Idempotency-Key": message.idempotency_key,
        }
        answer = post_json(
            self.settings["url"],
            body,
            headers,
            timeout=float(self.settings.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        )
        if answer.ok:
            reply = answer.json()
            given = reply.get("id") if isinstance(reply, dict) else None
            return ProviderResult.sent(str(given or message.idempotency_key))
        if answer.retryable:
            return ProviderResult.retry(answer.describe())
        return ProviderResult.fail(answer.describe())
