"""Channel adapters, one per ChannelKind. ``adapter_for`` is the only way the outbox gets one,
so adding WeCom is a new module and one line here."""

from __future__ import annotations

from siyu.messaging.channels.base import ChannelAdapter
from siyu.messaging.channels.console import ConsoleAdapter
from siyu.messaging.channels.sms import SmsGatewayAdapter
from siyu.messaging.channels.smtp import EmailAdapter
from siyu.messaging.channels.webhook import WebhookAdapter
from siyu.messaging.models import ChannelConfig, ChannelKind

ADAPTERS: dict[str, type[ChannelAdapter]] = {
    ChannelKind.CONSOLE: ConsoleAdapter,
    ChannelKind.WEBHOOK: WebhookAdapter,
    ChannelKind.EMAIL: EmailAdapter,
    ChannelKind.SMS: SmsGatewayAdapter,
}


def adapter_for(channel: ChannelConfig) -> ChannelAdapter:
    return ADAPTERS[channel.kind](channel.settings, rate_per_second=channel.rate_per_second)
