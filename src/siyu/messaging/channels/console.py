"""The development channel: the message goes to the log, nothing leaves the machine."""

from __future__ import annotations

import json
import logging

from siyu.messaging.channels.base import ChannelAdapter, Outbound, ProviderResult

logger = logging.getLogger("siyu.messaging.console")


class ConsoleAdapter(ChannelAdapter):
    def send(self, message: Outbound) -> ProviderResult:
        logger.warning(
            "message %s to contact %s: %s | %s%s",
            message.idempotency_key,
            message.contact_id,
            message.subject,
            message.body,
            f" | attachments {json.dumps(message.attachments, ensure_ascii=False, sort_keys=True)}"
            if message.attachments
            else "",
        )
        return ProviderResult.sent(f"console-{message.message_id}")
