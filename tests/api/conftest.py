import pytest
from django.test import Client

from siyu.tenancy.services import api_key_create


def _client(workspace) -> Client:
    _, raw = api_key_create(workspace=workspace, name="integration")
    return Client(headers={"Authorization": f"Bearer {raw}"})


@pytest.fixture
def api(ws) -> Client:
    return _client(ws)


@pytest.fixture
def other_api(other_ws) -> Client:
    return _client(other_ws)
