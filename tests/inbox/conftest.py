import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """These tests make several logins each; a fast hasher keeps setup from dominating them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
