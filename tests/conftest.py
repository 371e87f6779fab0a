import pytest
from django.test import Client


@pytest.fixture
def ws(db):
    from tests import factories

    return factories.workspace()


@pytest.fixture
def other_ws(db):
    from tests import factories

    return factories.workspace()


@pytest.fixture
def api(ws) -> Client:
    from tests import factories

    return factories.api_client(ws)


@pytest.fixture
def other_api(other_ws) -> Client:
    from tests import factories

    return factories.api_client(other_ws)


from tests.browser import browser, page  # noqa: E402, F401  (shared real-browser fixtures)
