"""SMS through a generic HTTP gateway: one JSON POST per message, whose field names and fixed
parameters (account, signature, template code) come from the channel's settings, because every
gateway names them differently:

    {"url": "https://gw.example/send", "secret": "...",
     "fields": {"to": "mobile", "text": "content", "idempotency_key": "out_id"},
     "params": {"sign": "【品牌】", "template_code": "SMS_001"},
     "ok_field": "code", "ok_value": "0", "id_field": "msg_id"}

The idempotency key rides along (default field ``out_id``); most gateways drop a repeated
out_id, which is what makes a resend after a crash harmless."""

from __future__ import annotations

import json

from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult, signed_headers
from siyu.messaging.channels.transport import DEFAULT_TIMEOUT_SECONDS, post_json

DEFAULT_FIELDS = {"to": "to", "text": "text", "idempotency_key": "out_id"}


class SmsGatewayAdapter(ChannelAdapter):
    address_kind = "phone"

    def send(self, message: Outbound) -> ProviderResult:
        fields = {**DEFAULT_FIELDS, **self.settings.get("fields", {})}
        payload = {
            **self.settings.get("params", {}),
            fields["to"]: message.to,
            fields["text"]: message.body,
            fields["idempotency_key"]: message.idempotency_key,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        secret = self.settings.get("secret", "")
        answer = post_json(
            self.settings["url"],
            body,
            signed_headers(secret, body) if secret else {},
            timeout=float(self.settings.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        )
        if answer.retryable:
            return ProviderResult.retry(answer.describe())
        reply = answer.json()
        ok_field, ok_value = (
            self.settings.get("ok_field", "ok"),
            self.settings.get("ok_value", True),
        )
        if not answer.ok or not isinstance(reply, dict) or reply.get(ok_field) != ok_value:
            return ProviderResult.fail(f"gateway refused: {answer.describe()}")
        return ProviderResult.sent(
            str(reply.get(self.settings.get("id_field", "id")) or message.idempotency_key)
        )
