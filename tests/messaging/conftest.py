import pytest

from tests.messaging.fakes import FakeSmsGateway, FakeSmtp, FakeWebhook


@pytest.fixture
def webhook():
    server = FakeWebhook()
    yield server
    server.close()


@pytest.fixture
def sms_gateway():
    server = FakeSmsGateway(refuse=("+8613900000002",))
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = FakeSmtp(refuse=("gone@example.com",))
    yield server
    server.close()
