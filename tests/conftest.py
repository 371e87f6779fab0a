import pytest


@pytest.fixture
def ws(db):
    from tests import factories

    return factories.workspace()


@pytest.fixture
def other_ws(db):
    from tests import factories

    return factories.workspace()
