"""The demo's bulk load and ``siyu demo --rebuild``'s delete take the database's keys and indexes
aside while they work (on PostgreSQL): afterwards the schema is what it was, its constraints
still refuse bad rows, and only the demo workspace's rows are gone."""

from datetime import date

import pytest
from django.db import IntegrityError, connection, transaction

from siyu.audiences.models import ContactLayer
from siyu.commerce.models import Order, Store
from siyu.contacts.models import Contact, Identity
from siyu.demo import build_demo
from siyu.demo.build import LOADED, demo_delete
from siyu.events.models import Event
from siyu.tenancy.models import Workspace
from tests import factories

TODAY = date(2026, 3, 1)


def schema() -> set[tuple]:
    """Every index and constraint of the loaded tables, as the database defines them."""
    tables = [m._meta.db_table for m in LOADED]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
                "FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]) "
                "UNION ALL SELECT indrelid::regclass::text, indexrelid::regclass::text, "
                "pg_get_indexdef(indexrelid), true FROM pg_index WHERE indrelid = ANY(%s::regclass[])",
                [tables, tables],
            )
        else:
            cur.execute(
                "SELECT tbl_name, name, sql, 1 FROM sqlite_master WHERE tbl_name IN "
                f"({', '.join(['%s'] * len(tables))})",
                tables,
            )
        return set(cur.fetchall())


def rejected(write) -> bool:
    """Whether the database refuses ``write`` (foreign keys are checked at once here)."""
    try:
        with transaction.atomic():
            write()
            connection.check_constraints()
    except IntegrityError:
        return True
    return False


@pytest.mark.django_db
def test_the_build_leaves_keys_and_indexes_as_it_found_them(ws):
    before = schema()

    summary = build_demo(workspace=ws, contacts=400, seed=3, today=TODAY)

    assert schema() == before
    assert Contact.objects.filter(workspace=ws).count() == summary.contacts
    event = Event.objects.filter(workspace=ws).first()
    order = Order.objects.filter(workspace=ws).first()
    assert rejected(
        lambda: Event.objects.create(
            workspace=ws,
            event_id=event.event_id,
            contact=event.contact,
            type="page_view",
            occurred_at=event.occurred_at,
        )
    )
    assert rejected(lambda: Order.objects.filter(id=order.id).update(contact_id=10**12))
    assert rejected(lambda: Identity.objects.filter(workspace=ws).update(contact_id=10**12))


@pytest.mark.django_db
def test_deleting_the_demo_removes_only_its_rows(ws):
    build_demo(workspace=ws, contacts=400, seed=3, today=TODAY)
    other = factories.workspace()
    kept = factories.contact(other)
    ContactLayer.objects.create(
        workspace=other,
        contact=kept,
        lifecycle_stage="prospect",
        intent_layer="silent",
        changed_at=kept.first_seen_at,
    )
    before = schema()

    demo_delete(workspace=ws)

    assert not Workspace.objects.filter(id=ws.id).exists()
    for model in (Contact, Identity, Order, Event, Store):
        assert not model.objects.filter(workspace_id=ws.id).exists(), model.__name__
    assert Contact.objects.filter(id=kept.id).exists()
    assert ContactLayer.objects.filter(contact=kept).exists()
    assert schema() == before
    assert rejected(
        lambda: Order.objects.create(
            workspace=other,
            order_no="X1",
            contact_id=10**12,
            channel="store",
            paid_at=kept.first_seen_at,
            amount=1,
            gross_amount=1,
        )
    )
