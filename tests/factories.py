"""Factories for test data: small functions with sensible defaults, one per model a test needs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model

from siyu.commerce.models import Product, Staff, Store
from siyu.contacts.schemas import ContactIn
from siyu.contacts.services import contacts_upsert
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
