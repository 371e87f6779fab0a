"""What each importable entity validates with and how a batch of valid rows is written: always
through the owning app's services (``prepare_*``/``write_*``, ``*_upsert``), the same as the API;
events and orders are written set-at-a-time (COPY on PostgreSQL, see ``siyu.bulk``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

import numpy as np
from django.db import DatabaseError, transaction
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from siyu.commerce import services as commerce_services
from siyu.commerce.schemas import OrderIn, ProductIn, StaffIn, StoreIn
from siyu.contacts import queries as contact_queries
from siyu.contacts import services as contact_services
from siyu.contacts.identities import normalise_identity
from siyu.contacts.models import Consent, Contact, SourceChannel
from siyu.contacts.schemas import ContactIn
from siyu.errors import ValidationFailed
from siyu.events import services as event_services
from siyu.events.schemas import EventIn
from siyu.ingest import BatchResult, RowError
from siyu.schemas import Money, StrictModel
from siyu.tenancy.models import Workspace

Writer = Callable[[Workspace, list[Any]], tuple[BatchResult, list[RowError]]]


@dataclass(frozen=True)
class Entity:
    name: str
    schema: type[BaseModel]
    #: (path, value) pairs that must be unique within a file; the path's last part names the id.
    keys: Callable[[Any], list[tuple[str, str]]]
    write: Writer


def _write_events(workspace: Workspace, items: list[EventIn]) -> tuple[BatchResult, list[RowError]]:
    prepared, errors = event_services.prepare_events(workspace=workspace, items=items)
    return event_services.write_events(workspace=workspace, prepared=prepared), errors


def _write_orders(workspace: Workspace, items: list[OrderIn]) -> tuple[BatchResult, list[RowError]]:
    prepared, errors = commerce_services.prepare_orders(workspace=workspace, items=items)
    return commerce_services.write_orders(workspace=workspace, prepared=prepared), errors


def _upserter(service: Callable[..., BatchResult]) -> Writer:
    def write(workspace: Workspace, items: list[Any]) -> tuple[BatchResult, list[RowError]]:
        result = service(workspace=workspace, items=items)
        return result, result.errors

    return write


_CONTACT_FIELDS = (
    "name",
    "nickname",
    "gender",
    "birthday",
    "city",
    "phone_hash",
    "member_no",
    "source_channel",
    "first_touch_campaign",
    "first_touch_state",
    "first_touch_store_id",
    "first_touch_staff_id",
    "store_id",
    "owner_staff_id",
    "referred_by_id",
    "attributes",
    "first_seen_at",
)


def _create_new_contacts(
    workspace: Workspace,
    items: list[ContactIn],
    keys: list[set[tuple[str, str, str]]],
    known_keys: set[tuple[str, str, str]],
) -> set[int]:
    """Creates, in bulk, the items that are certainly new contacts and returns their positions.

    New means: none of its identities is stored, none is shared with another item of the batch
    or named there as a referrer, and it names no referrer itself — so no merge and no lookup
    depends on the order rows are written in, and the result is what ``contacts_upsert`` would
    store one by one (a new contact costs three statements per batch instead of several per row)."""
    seen: dict[tuple[str, str, str], int] = {}
    for item_keys in keys:
        for key in item_keys:
            seen[key] = seen.get(key, 0) + 1
    for item in items:
        if item.referred_by is not None:
            ref = item.referred_by
            seen[normalise_identity(ref.kind, ref.value, ref.app_id).key] = 2
    new = [
        j
        for j, (item, item_keys) in enumerate(zip(items, keys, strict=True))
        if item.referred_by is None
        and not item_keys & known_keys
        and all(seen[key] == 1 for key in item_keys)
    ]
    if not new:
        return set()
    try:
        with transaction.atomic():
            contact_services.contacts_create(workspace=workspace, items=[items[j] for j in new])
    except DatabaseError:
        return set()  # an identity stored meanwhile by another writer: upsert them one by one
    return set(new)


def _write_contacts(
    workspace: Workspace, items: list[ContactIn]
) -> tuple[BatchResult, list[RowError]]:
    """contacts_upsert always saves, so "unchanged" is judged here: the touched contacts'
    fields, consents and identities are read once per batch before and compared after."""
    invalid = contact_services.validate_contacts(workspace=workspace, items=items)
    errors = [RowError(i, exc.path or "", exc.message) for i, exc in invalid.items()]
    good = [item for i, item in enumerate(items) if i not in invalid]
    keys = [
        {normalise_identity(ident.kind, ident.value, ident.app_id).key for ident in item.identities}
        for item in good
    ]
    owners = contact_queries.contact_ids_by_identities(
        workspace=workspace,
        identities=[
            normalise_identity(ident.kind, ident.value, ident.app_id)
            for item in good
            for ident in item.identities
        ],
    )
    known_keys = set(owners)
    result = BatchResult()
    created = _create_new_contacts(workspace, good, keys, known_keys)
    result.created += len(created)
    good = [item for j, item in enumerate(good) if j not in created]
    keys = [item_keys for j, item_keys in enumerate(keys) if j not in created]
    ids = set(owners.values())
    before = {
        row[0]: row[1:]
        for row in Contact.objects.filter(workspace=workspace, id__in=ids).values_list(
            "id", *_CONTACT_FIELDS
        )
    }
    consents: dict[int, dict[str, str]] = {}
    for contact_id, channel, status in Consent.objects.filter(
        workspace=workspace, contact_id__in=ids
    ).values_list("contact_id", "channel", "status"):
        consents.setdefault(contact_id, {})[channel] = status
    upserted_all = contact_services.contacts_upsert(workspace=workspace, items=good) if good else []
    for item, item_keys, upserted in zip(good, keys, upserted_all, strict=True):
        contact = upserted.contact
        snapshot = tuple(getattr(contact, f) for f in _CONTACT_FIELDS)
        old_consent = consents.get(contact.id, {})
        new_consent = {**old_consent, **{str(k): str(v) for k, v in item.consent.items()}}
        if upserted.created:
            result.created += 1
        elif (
            upserted.merged_ids
            or not item_keys <= known_keys
            or before.get(contact.id) != snapshot
            or new_consent != old_consent
        ):
            result.updated += 1
        else:
            result.unchanged += 1
        before[contact.id], consents[contact.id] = snapshot, new_consent
        known_keys |= item_keys
    return result, errors


_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")


def _month(value: Any) -> Any:
    """``2026-03`` is the month; a full date stands for its month, as in the API."""
    if isinstance(value, str) and _YEAR_MONTH.fullmatch(value.strip()):
        return f"{value.strip()}-01"
    return value


class SpendIn(StrictModel):
    """One row of a spend file: what a source channel (optionally one campaign) cost in a month."""

    channel: SourceChannel
    campaign: str = Field(default="", max_length=100)
    month: Annotated[date, BeforeValidator(_month)]
    amount: Money
    note: str = Field(default="", max_length=200)


def _spend_key(item: SpendIn) -> str:
    """What a spend entry is the amount of: its channel, campaign (if any) and month."""
    parts = (item.channel.value, item.campaign, f"{item.month:%Y-%m}")
    return "/".join(p for p in parts if p)


def _write_spend(workspace: Workspace, items: list[SpendIn]) -> tuple[BatchResult, list[RowError]]:
    """``channel_spends_set`` refuses a batch with any bad entry; the entries it names are
    reported and the rest written, so a spend file keeps its good rows like any other import."""
    entries = [{**item.model_dump(), "channel": item.channel.value} for item in items]
    try:
        return commerce_services.channel_spends_set(workspace=workspace, entries=entries), []
    except ValidationFailed as exc:
        found = getattr(exc, "errors", None)
        if not found:
            raise
    errors = []
    for error in found:
        index, _, path = error["path"].partition(".")
        errors.append(RowError(int(index), path, error["message"]))
    refused = {e.index for e in errors}
    good = [entry for i, entry in enumerate(entries) if i not in refused]
    result = (
        commerce_services.channel_spends_set(workspace=workspace, entries=good)
        if good
        else BatchResult()
    )
    return result, errors


ENTITIES: dict[str, Entity] = {
    "contacts": Entity("contacts", ContactIn, lambda item: [], _write_contacts),
    "events": Entity("events", EventIn, lambda item: [("event_id", item.event_id)], _write_events),
    "orders": Entity(
        "orders",
        OrderIn,
        lambda item: (
            [("order_no", item.order_no)]
            + [(f"refunds.{i}.refund_no", r.refund_no) for i, r in enumerate(item.refunds)]
        ),
        _write_orders,
    ),
    "products": Entity(
        "products",
        ProductIn,
        lambda item: [("sku", item.sku)],
        _upserter(commerce_services.products_upsert),
    ),
    "stores": Entity(
        "stores",
        StoreIn,
        lambda item: [("code", item.code)],
        _upserter(commerce_services.stores_upsert),
    ),
    "staff": Entity(
        "staff",
        StaffIn,
        lambda item: [("code", item.code)],
        _upserter(commerce_services.staff_upsert),
    ),
    "spend": Entity(
        "spend",
        SpendIn,
        lambda item: [("month", _spend_key(item))],
        _write_spend,
    ),
}


def describe(exc: ValidationError) -> list[tuple[str, str]]:
    """(path, message) per pydantic error, worded for someone fixing a spreadsheet."""
    out = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"])
        kind, value = err["type"], err.get("input")
        reason = (err.get("ctx") or {}).get("error")
        if kind in ("date_parsing", "date_from_datetime_parsing", "datetime_from_date_parsing"):
            message = f"{value} is not a valid date" + (f" ({reason})" if reason else "")
        elif kind == "datetime_parsing":
            message = f"{value} is not a valid date and time" + (f" ({reason})" if reason else "")
        elif kind == "value_error":
            message = str(reason) if reason else err["msg"]
        elif kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "is required"
        elif isinstance(value, str | int | float):
            message = f"{err['msg'][0].lower()}{err['msg'][1:]}, got {value!r}"
        else:
            message = err["msg"]
        out.append((path, message))
    return out


class SeenIds:
    """Which ids (order_no, event_id, …) earlier batches of this file accepted, and on which line.

    Kept as sorted numpy runs of 64-bit string hashes and line numbers — 16 bytes per row, not the
    row — merged geometrically so there are O(log n) runs to search. A hash collision (about 3 in a
    million for a 10M-row file) would reject a row as a duplicate it is not; the reason names the
    line, so it is easy to check."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    @staticmethod
    def _hashes(keys: list[str]) -> np.ndarray:
        return np.fromiter((hash(k) for k in keys), dtype=np.int64, count=len(keys))

    def first_lines(self, keys: list[str]) -> list[int]:
        """Line each key was first accepted on, 0 where never."""
        return self.first_lines_hashed(self._hashes(keys)).tolist()

    def first_lines_hashed(self, hashes: np.ndarray) -> np.ndarray:
        """As ``first_lines``, for keys already hashed with ``hash()``."""
        found = np.zeros(len(hashes), dtype=np.int64)
        for run_hashes, run_lines in self._runs:
            pos = np.minimum(np.searchsorted(run_hashes, hashes), len(run_hashes) - 1)
            hit = (run_hashes[pos] == hashes) & (found == 0)
            found[hit] = run_lines[pos[hit]]
        return found

    def add(self, keys: list[str], lines: list[int]) -> None:
        if keys:
            self.add_hashed(self._hashes(keys), np.asarray(lines, dtype=np.int64))

    def add_hashed(self, hashes: np.ndarray, lines: np.ndarray) -> None:
        if not len(hashes):
            return
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], np.asarray(lines, dtype=np.int64)[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (h2, l2), (h1, l1) = self._runs.pop(), self._runs.pop()
            hashes, lines_ = np.concatenate([h1, h2]), np.concatenate([l1, l2])
            order = np.argsort(hashes, kind="stable")
            self._runs.append((hashes[order], lines_[order]))
