from datetime import UTC, datetime

import pytest

from tests import factories

#: Monday 2 March 2026, 12:00 in Shanghai: outside the default quiet hours.
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def console(ws):
    """A console channel and a template for it."""
    return factories.channel(ws), factories.message_template(ws, body="Hi {{nickname}}, cherries are in!")


def send_step(console, key="hello", **kw):
    channel, template = console
    return {"key": key, "type": "send", "channel_id": channel.id, "template_id": template.id, **kw}
