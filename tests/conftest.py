import pytest


@pytest.fixture
def ws(db):
    from tests import factories

    return factories.workspace()


@pytest.fixture
def other_ws(db):
    from tests import factories

    return factories.workspace()


from tests.browser import browser, page  # noqa: E402, F401  (shared real-browser fixtures)
