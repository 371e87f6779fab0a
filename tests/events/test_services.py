from datetime import UTC, datetime, timedelta

import pytest

from siyu.errors import ValidationFailed
from siyu.events.models import Event
from siyu.events.schemas import EventIn
from siyu.events.services import events_ingest, prepare_events, write_events
from tests import factories

AT = datetime(2026, 3, 3, 10, tzinfo=UTC)


def _event(i, **kw):
    return EventIn(
        **{
            "event_id": f"e{i}",
            "type": "product_view",
            "contact": {"kind": "member_no", "value": "M1"},
            "occurred_at": AT,
            "properties": {"sku": "CHERRY"},
            **kw,
        }
    )


@pytest.mark.django_db
def test_events_are_deduplicated_by_event_id(ws):
    factories.contact(ws, identities=[{"kind": "member_no", "value": "M1"}])
    first = events_ingest(workspace=ws, items=[_event(i) for i in range(5)])
    second = events_ingest(workspace=ws, items=[_event(i) for i in range(7)])
    assert (first.created, second.created, second.unchanged) == (5, 2, 5)
    assert Event.objects.filter(workspace=ws).count() == 7


@pytest.mark.django_db
def test_an_event_another_writer_stored_meanwhile_is_skipped_and_counted_unchanged(ws):
    buyer = factories.contact(ws, identities=[{"kind": "member_no", "value": "M1"}])
    prepared, errors = prepare_events(workspace=ws, items=[_event(i) for i in range(3)])
    Event.objects.create(workspace=ws, event_id="e1", contact=buyer, type="share", occurred_at=AT)

    result = write_events(workspace=ws, prepared=prepared)

    assert (errors, result.created, result.unchanged) == ([], 2, 1)
    assert sorted(Event.objects.filter(workspace=ws).values_list("event_id", "type")) == [
        ("e0", "product_view"),
        ("e1", "share"),
        ("e2", "product_view"),
    ]
    assert Event.objects.get(workspace=ws, event_id="e0").properties == {"sku": "CHERRY"}


@pytest.mark.django_db
def test_the_same_event_id_in_another_workspace_is_another_event(ws, other_ws):
    factories.contact(ws, identities=[{"kind": "member_no", "value": "M1"}])
    factories.contact(other_ws, identities=[{"kind": "member_no", "value": "M1"}])
    events_ingest(workspace=ws, items=[_event(1)])
    assert events_ingest(workspace=other_ws, items=[_event(1)]).created == 1


@pytest.mark.django_db
def test_future_events_and_unknown_contacts_are_refused_with_paths(ws):
    factories.contact(ws, identities=[{"kind": "member_no", "value": "M1"}])
    future = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(ValidationFailed) as exc:
        events_ingest(
            workspace=ws,
            items=[
                _event(1),
                _event(2, occurred_at=future),
                _event(3, contact={"kind": "member_no", "value": "M404"}),
            ],
        )
    assert [e["path"] for e in exc.value.errors] == ["1.occurred_at", "2.contact"]
    assert "is in the future" in exc.value.errors[0]["message"]
    assert Event.objects.count() == 0


def test_content_view_duration_and_custom_name_are_checked():
    with pytest.raises(ValueError, match="custom events need a name"):
        _event(1, type="custom")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        _event(1, type="content_view", duration_seconds=-5)
