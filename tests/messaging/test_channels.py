"""Each adapter end to end: queued in the outbox, dispatched, received by a local fake provider
over the real protocol; failures recorded, retried with backoff, then failed with the reason."""

import logging
from datetime import timedelta
from email import message_from_string, policy

import pytest

from siyu.errors import ValidationFailed
from siyu.messaging import services
from siyu.messaging.models import Message
from tests import factories
from tests.messaging.fakes import FakeWebhook
from tests.messaging.helpers import NOON, queue


def dispatch(now=NOON, worker="w1"):
    return services.messages_dispatch(worker_id=worker, now=now)


def test_console_channel_logs_the_rendered_message(ws, caplog):
    store = factories.store(ws, name="徐汇店")
    alice = factories.contact(ws, nickname="Alice", store_code=store.code)
    template = factories.message_template(
        ws, "console", body="{{ nickname }}, {{store}} 今天上新", subject="Hi"
    )
    queue(ws, template, factories.channel(ws, "console"), [alice])

    with caplog.at_level(logging.WARNING, logger="siyu.messaging.console"):
        done = dispatch()

    assert (done.claimed, done.sent) == (1, 1)
    message = Message.objects.get(workspace=ws)
    assert (message.status, message.body, message.attempts) == ("sent", "Alice, 徐汇店 今天上新", 1)
    assert message.sent_at == NOON
    assert message.provider_message_id == f"console-{message.id}"
    assert caplog.messages == [
        f"message campaign:1:contact:{alice.id} to contact {alice.id}: Hi | Alice, 徐汇店 今天上新"
    ]


def test_webhook_posts_a_signed_message_with_its_idempotency_key(ws, webhook):
    alice = factories.contact(ws, nickname="Alice")
    channel = factories.channel(ws, "webhook", {"url": webhook.url, "secret": webhook.secret})
    queue(
        ws, factories.message_template(ws, "webhook", body="Hello {{nickname}}"), channel, [alice]
    )

    assert dispatch().sent == 1

    key = f"campaign:1:contact:{alice.id}"
    assert webhook.bad_signatures == 0
    assert webhook.keys == {key: 1}
    assert webhook.bodies[0] == {
        "message_id": Message.objects.get().id,
        "idempotency_key": key,
        "contact_id": alice.id,
        "subject": "",
        "body": "Hello Alice",
        "attachments": {},
    }
    assert Message.objects.get().provider_message_id == f"wh-{key}"


def test_webhook_with_a_wrong_secret_fails_on_the_receivers_401(ws, webhook):
    channel = factories.channel(ws, "webhook", {"url": webhook.url, "secret": "not-the-receivers"})
    queue(ws, factories.message_template(ws, "webhook"), channel, [factories.contact(ws)])

    assert dispatch().failed == 1

    message = Message.objects.get()
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == 'HTTP 401: {"error": "boom"}'


def test_webhook_500_is_retried_with_backoff_then_fails_with_the_last_error(ws):
    server = FakeWebhook(default=500)
    try:
        channel = factories.channel(ws, "webhook", {"url": server.url, "secret": server.secret})
        queue(ws, factories.message_template(ws, "webhook"), channel, [factories.contact(ws)])

        now = NOON
        assert dispatch(now).retried == 1
        message = Message.objects.get()
        assert (message.status, message.attempts, message.last_error) == (
            "queued",
            1,
            'HTTP 500: {"error": "boom"}',
        )
        assert message.next_attempt_at == now + timedelta(seconds=30)
        assert dispatch(now + timedelta(seconds=29)).claimed == 0  # not due before its backoff

        for wait in (30, 120, 600, 1800):
            now += timedelta(seconds=wait)
            assert dispatch(now).claimed == 1
    finally:
        server.close()

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 5)
    assert message.last_error == 'gave up after 5 attempts: HTTP 500: {"error": "boom"}'
    assert dispatch(now + timedelta(days=1)).claimed == 0


def test_a_hanging_webhook_times_out_is_recorded_and_sent_on_the_retry(ws):
    server = FakeWebhook(script=["hang"])
    try:
        channel = factories.channel(
            ws, "webhook", {"url": server.url, "secret": server.secret, "timeout": 0.5}
        )
        queue(ws, factories.message_template(ws, "webhook"), channel, [factories.contact(ws)])

        assert dispatch().retried == 1
        message = Message.objects.get()
        assert (message.status, message.last_error) == ("queued", "timeout after 0.5 s")

        assert dispatch(NOON + timedelta(seconds=30)).sent == 1
    finally:
        server.close()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == ("sent", 2, "")


def test_email_goes_through_smtp_to_the_contacts_address(ws, smtp):
    alice = factories.contact(
        ws, nickname="Alice", identities=[{"kind": "email", "value": "Alice@Example.com"}]
    )
    channel = factories.channel(
        ws, "email", {"host": "127.0.0.1", "port": smtp.port, "from": "news@brand.cn"}
    )
    template = factories.message_template(
        ws, "email", subject="{{nickname}} 的会员日", body="Dear {{nickname}}"
    )
    queue(ws, template, channel, [alice])

    assert dispatch().sent == 1

    [mail] = smtp.mails
    assert (mail.sender, mail.recipients) == ("news@brand.cn", ["alice@example.com"])
    parsed = message_from_string(mail.data, policy=policy.default)
    assert (parsed["Subject"], parsed.get_content().strip()) == ("Alice 的会员日", "Dear Alice")
    key = f"campaign.1.contact.{alice.id}"
    assert parsed["Message-ID"] == f"<{key}@brand.cn>"
    assert Message.objects.get().provider_message_id == f"<{key}@brand.cn>"


def test_email_refused_by_the_server_fails_without_retry(ws, smtp):
    gone = factories.contact(ws, identities=[{"kind": "email", "value": "gone@example.com"}])
    channel = factories.channel(
        ws, "email", {"host": "127.0.0.1", "port": smtp.port, "from": "news@brand.cn"}
    )
    queue(ws, factories.message_template(ws, "email", body="x"), channel, [gone])

    assert dispatch().failed == 1
    message = Message.objects.get()
    assert (message.status, message.last_error) == ("failed", "SMTP 550: no such mailbox")


def test_email_to_a_contact_without_an_address_is_suppressed(ws, smtp):
    channel = factories.channel(
        ws, "email", {"host": "127.0.0.1", "port": smtp.port, "from": "news@brand.cn"}
    )
    result = queue(
        ws, factories.message_template(ws, "email", body="x"), channel, [factories.contact(ws)]
    )

    assert result.suppressed == {"no_address": 1}
    assert smtp.mails == []


def test_sms_gateway_gets_its_own_field_names_and_a_refusal_fails(ws, sms_gateway):
    ok = factories.contact(ws, phone="13900000001", nickname="Bo")
    refused = factories.contact(ws, phone="13900000002")
    channel = factories.channel(
        ws,
        "sms",
        {
            "url": sms_gateway.url,
            "fields": {"to": "mobile", "text": "content", "idempotency_key": "out_id"},
            "params": {"sign": "【品牌】", "template_code": "SMS_001"},
            "ok_field": "code",
            "ok_value": "0",
            "id_field": "msg_id",
        },
    )
    queue(
        ws,
        factories.message_template(ws, "sms", body="{{nickname}}，会员日见"),
        channel,
        [ok, refused],
    )

    done = dispatch()

    assert (done.sent, done.failed) == (1, 1)
    assert sms_gateway.received[0] == {
        "sign": "【品牌】",
        "template_code": "SMS_001",
        "mobile": "+8613900000001",
        "content": "Bo，会员日见",
        "out_id": f"campaign:1:contact:{ok.id}",
    }
    by_contact = {m.contact_id: m for m in Message.objects.all()}
    assert (by_contact[ok.id].status, by_contact[ok.id].provider_message_id) == ("sent", "sms-1")
    assert by_contact[refused.id].status == "failed"
    assert by_contact[refused.id].last_error == (
        'gateway refused: HTTP 200: {"code": "1001", "message": "blacklisted number"}'
    )


def test_unknown_template_variable_is_refused_naming_the_known_ones(ws):
    with pytest.raises(ValidationFailed) as refused:
        factories.message_template(ws, "sms", body="Hi {{nick_name}}")

    assert refused.value.code == "unknown_variable"
    assert refused.value.message == (
        "Unknown variable {{nick_name}} in the body; use one of {{city}}, {{coupon}}, {{link}}, "
        "{{member_no}}, {{name}}, {{nickname}}, {{product}}, {{store}}."
    )


def test_a_stray_brace_in_a_template_is_refused(ws):
    with pytest.raises(ValidationFailed) as refused:
        factories.message_template(ws, "sms", body="Hi {{nickname}", subject="")

    assert refused.value.message == "The body has a '{{' or '}}' that is not a {{variable}}."


def test_a_channel_without_its_settings_is_refused(ws):
    with pytest.raises(ValidationFailed) as refused:
        factories.channel(ws, "webhook", {"url": "http://127.0.0.1:9/"})

    assert refused.value.message == "A webhook channel needs settings: secret."


def test_a_template_for_another_channel_kind_is_refused(ws):
    template = factories.message_template(ws, "sms", body="x")
    with pytest.raises(ValidationFailed) as refused:
        queue(ws, template, factories.channel(ws, "console", name="dev"), [factories.contact(ws)])

    assert (
        refused.value.message == f"Template {template.name!r} is for sms, channel 'dev' is console."
    )
