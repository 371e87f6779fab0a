"""Factories for test data: small functions with sensible defaults, one per model a test needs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.test import Client

from siyu.commerce.models import Order, OrderItem, Product, Staff, Store
from siyu.contacts.models import Contact
from siyu.contacts.schemas import ContactIn
from siyu.contacts.services import contacts_upsert
from siyu.events.models import Event
from siyu.insights.clv import simulate_bgnbd
from siyu.tenancy import services as tenancy_services
from siyu.tenancy.models import Workspace

_seq = itertools.count(1)


def workspace(slug: str | None = None, **kw) -> Workspace:
    n = next(_seq)
    return tenancy_services.workspace_create(slug=slug or f"brand-{n}", name=kw.pop("name", f"Brand {n}"), **kw)


def user(username: str | None = None, password: str = "secret-pass-1"):
    return get_user_model().objects.create_user(username=username or f"user{next(_seq)}", password=password)


def member(ws: Workspace, role: str = "owner", username: str | None = None, password: str = "secret-pass-1"):
    u = user(username, password)
    tenancy_services.membership_set(workspace=ws, user=u, role=role)
    return u


def store(ws: Workspace, code: str | None = None, **kw) -> Store:
    n = next(_seq)
    return Store.objects.create(workspace=ws, code=code or f"S{n}", name=kw.pop("name", f"Store {n}"), **kw)


def staff(ws: Workspace, store_obj: Store | None = None, code: str | None = None, **kw) -> Staff:
    n = next(_seq)
    return Staff.objects.create(workspace=ws, code=code or f"E{n}", name=kw.pop("name", f"Staff {n}"), store=store_obj, **kw)


def product(ws: Workspace, sku: str | None = None, price: str = "39.90", **kw) -> Product:
    n = next(_seq)
    return Product.objects.create(workspace=ws, sku=sku or f"SKU{n}", name=kw.pop("name", f"Product {n}"),
                                  price=Decimal(price), **kw)


def contact(ws: Workspace, phone: str | None = None, **kw):
    identities = kw.pop("identities", None) or [{"kind": "phone", "value": phone or f"139{next(_seq):08d}"}]
    kw.setdefault("first_seen_at", datetime(2026, 1, 1, tzinfo=UTC))
    return contacts_upsert(workspace=ws, items=[ContactIn(identities=identities, **kw)])[0].contact


def order(ws: Workspace, contact_obj, amount: str = "99.00", paid_at: datetime | None = None, **kw):
    """An order paid in full (no discount); ``items`` as (sku, name, quantity, unit_price) tuples."""
    items = kw.pop("items", [])
    o = Order.objects.create(
        workspace=ws, order_no=kw.pop("order_no", f"O{next(_seq)}"), contact=contact_obj,
        channel=kw.pop("channel", "store"), paid_at=paid_at or datetime(2026, 1, 2, tzinfo=UTC),
        gross_amount=Decimal(amount), amount=Decimal(amount), **kw,
    )
    for sku, name, quantity, unit_price in items:
        OrderItem.objects.create(workspace=ws, order=o, sku=sku, name=name, quantity=quantity,
                                 unit_price=Decimal(unit_price), amount=Decimal(unit_price) * quantity)
    return o


def event(ws: Workspace, contact_obj, type: str = "page_view", occurred_at: datetime | None = None, **kw):
    return Event.objects.create(workspace=ws, event_id=kw.pop("event_id", f"ev-{next(_seq)}"), contact=contact_obj,
                                type=type, occurred_at=occurred_at or datetime(2026, 1, 3, tzinfo=UTC), **kw)


#: The last day of the simulated purchase histories.
SIMULATED_END = date(2026, 6, 30)


def simulated_orders(
    ws: Workspace,
    n: int,
    seed: int = 3,
    channels: Sequence[str] = ("other",),
    store_obj: Store | None = None,
) -> dict:
    """Purchase histories drawn from BG/NBD with known parameters, written as real orders ending
    on SIMULATED_END; contacts take ``channels`` in turn. Returns the true parameters."""
    rng = np.random.default_rng(seed)
    params = {"r": 0.8, "alpha": 5.0, "a": 0.7, "b": 3.0}
    age_weeks = rng.uniform(20, 78, n).round()
    x, t_x, _ = simulate_bgnbd(n, **params, T=age_weeks, rng=rng)
    end = datetime(SIMULATED_END.year, SIMULATED_END.month, SIMULATED_END.day, 4, tzinfo=UTC)  # noon in Shanghai
    contacts = Contact.objects.bulk_create(
        [
            Contact(workspace=ws, name=f"c{i}", source_channel=channels[i % len(channels)], store=store_obj,
                    first_seen_at=end - timedelta(weeks=float(age_weeks[i])))
            for i in range(n)
        ]
    )
    nu = rng.gamma(4.0, 1 / 150.0, n)  # Gamma-Gamma spend heterogeneity: q=4, gamma=150, p=6
    orders = []
    for i, c in enumerate(contacts):
        first = end - timedelta(days=int(age_weeks[i] * 7))
        days = {0, int(round(t_x[i] * 7))} if x[i] else {0}
        while len(days) < x[i] + 1:  # distinct purchase days, the last one at the recency
            days.add(int(rng.integers(1, max(2, int(round(t_x[i] * 7))))))
        for d in sorted(days):
            amount = Decimal(f"{rng.gamma(6, 1 / nu[i]):.2f}")
            orders.append(Order(workspace=ws, order_no=f"o{i}-{d}", contact=c, channel="store",
                                paid_at=first + timedelta(days=d), gross_amount=amount, amount=amount))
    Order.objects.bulk_create(orders, batch_size=2000)
    return params


def plain_contact(ws: Workspace, **kw) -> Contact:
    """A contact written directly, any field settable (store, first-touch staff…): for analytics
    tests that need many hand-made contacts without identities."""
    kw.setdefault("first_seen_at", datetime(2026, 1, 1, tzinfo=UTC))
    return Contact.objects.create(workspace=ws, **kw)


from siyu.audiences.models import Segment, SegmentMember  # noqa: E402  (experiments factories)


def contacts_many(ws: Workspace, n: int) -> list[Contact]:
    """``n`` contacts in one insert, in id order."""
    made = Contact.objects.bulk_create(
        [Contact(workspace=ws, name=f"m{next(_seq)}", first_seen_at=datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(n)]
    )
    return sorted(made, key=lambda c: c.id)


def segment_with(ws: Workspace, contacts: Sequence[Contact], name: str | None = None) -> Segment:
    """A static segment whose members are exactly ``contacts`` (no rule refresh involved)."""
    seg = Segment.objects.create(workspace=ws, name=name or f"Segment {next(_seq)}", rule={"all": []},
                                 kind="static", status="ready", size=len(contacts))
    SegmentMember.objects.bulk_create([SegmentMember(workspace=ws, segment=seg, contact=c,
                                                     added_at=datetime(2026, 1, 1, tzinfo=UTC)) for c in contacts])
    return seg


def channel(ws: Workspace, kind: str = "console", settings: dict | None = None, **kw):
    from siyu.messaging.services import channel_create

    return channel_create(workspace=ws, kind=kind, name=kw.pop("name", f"{kind}-{next(_seq)}"),
                          settings=settings or {}, **kw)


def message_template(ws: Workspace, kind: str = "console", body: str = "Hi {{nickname}}", **kw):
    from siyu.messaging.services import template_save

    return template_save(workspace=ws, name=kw.pop("name", f"tpl-{next(_seq)}"), channel_kind=kind, body=body, **kw)


def api_client(workspace: Workspace) -> Client:
    """A test client authenticated with a fresh API key of ``workspace``."""
    _, raw = tenancy_services.api_key_create(workspace=workspace, name="integration")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def staff_login(ws: Workspace, store_obj: Store | None = None, is_manager: bool = False, username: str | None = None):
    """A staff console login linked to a Staff record of ``store_obj``: returns (user, staff)."""
    u = member(ws, role="staff", username=username)
    return u, staff(ws, store_obj, user=u, is_manager=is_manager)


def staff_task(ws: Workspace, contact_obj, assignee: Staff | None = None, due_at: datetime | None = None, **kw):
    """An open task on ``contact_obj`` (store: the assignee's unless given)."""
    from siyu.inbox.models import StaffTask

    now = datetime.now(UTC)
    kw.setdefault("store", assignee.store if assignee else None)
    return StaffTask.objects.create(
        workspace=ws, contact=contact_obj, assignee=assignee, due_at=due_at or now + timedelta(days=1),
        kind=kw.pop("kind", "follow_up"), title=kw.pop("title", f"Task {next(_seq)}"), source_kind="manual",
        idempotency_key=kw.pop("idempotency_key", f"test:{next(_seq)}"), created_at=now, updated_at=now, **kw)


def tag(ws: Workspace, name: str | None = None, group: str = "价值"):
    """A tag in a group of that name (the group is created)."""
    from siyu.audiences.services import tag_create, tag_group_create

    return tag_create(workspace=ws, group=tag_group_create(workspace=ws, name=f"{group} {next(_seq)}"),
                      name=name or f"tag-{next(_seq)}")
