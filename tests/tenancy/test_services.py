import pytest

from siyu.errors import DomainError, ValidationFailed
from siyu.tenancy import queries, services
from siyu.tenancy.models import ApiKey, AuditLog


@pytest.mark.django_db
def test_api_key_is_stored_hashed_and_authenticates_until_revoked(ws):
    key, raw = services.api_key_create(workspace=ws, name="pos")
    stored = ApiKey.objects.get(id=key.id)
    assert raw not in (stored.key_hash, stored.prefix, stored.name)
    assert queries.api_key_authenticate(raw).workspace == ws
    services.api_key_revoke(workspace=ws, key_id=key.id)
    assert queries.api_key_authenticate(raw) is None
    assert list(AuditLog.objects.filter(workspace=ws).values_list("action", flat=True).order_by("id")) == [
        "api_key.create",
        "api_key.revoke",
    ]


@pytest.mark.django_db
def test_a_workspace_cannot_revoke_another_workspaces_key(ws, other_ws):
    key, raw = services.api_key_create(workspace=other_ws, name="theirs")
    with pytest.raises(DomainError, match="API key not found"):
        services.api_key_revoke(workspace=ws, key_id=key.id)
    assert queries.api_key_authenticate(raw) is not None


@pytest.mark.django_db
def test_made_up_keys_do_not_authenticate(ws):
    services.api_key_create(workspace=ws, name="pos")
    assert queries.api_key_authenticate("sy_deadbeef_nope") is None
    assert queries.api_key_authenticate("") is None


@pytest.mark.django_db
def test_workspace_slug_and_time_zone_are_validated():
    with pytest.raises(ValidationFailed, match="must be 2-63 lowercase"):
        services.workspace_create(slug="Bad Slug", name="x")
    with pytest.raises(ValidationFailed, match="Unknown time zone"):
        services.workspace_create(slug="ok-slug", name="x", time_zone="Nowhere/City")
