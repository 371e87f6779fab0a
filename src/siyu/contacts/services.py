"""Writes to the customer pool: upsert by identities (OneID), merge, consent."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from siyu import bulk
from siyu.commerce import queries as commerce_queries
from siyu.contacts.identities import NormalIdentity, normalise_identity
from siyu.contacts.models import (
    Consent,
    ConsentStatus,
    Contact,
    ContactMerge,
    Identity,
    IdentityKind,
    SourceChannel,
)
from siyu.contacts.queries import contact_ids_by_identities
from siyu.contacts.schemas import ContactIn
from siyu.errors import ValidationFailed
from siyu.tenancy.models import ApiKey, Workspace
from siyu.tenancy.services import actor_login, audit_record

#: Per-model handlers for rows that cannot simply be re-pointed at the survivor because of a
#: unique constraint per contact. Apps that add such tables register here (tags, memberships).
MERGE_HANDLERS: dict[type[models.Model], Callable[[Workspace, Contact, list[int]], int]] = {}

_FILLABLE = (
    "name",
    "nickname",
    "gender",
    "birthday",
    "city",
    "member_no",
    "first_touch_campaign",
    "first_touch_state",
)


@dataclass
class UpsertResult:
    contact: Contact
    created: bool
    merged_ids: list[int] = field(default_factory=list)


def _normalise_all(item: ContactIn) -> list[NormalIdentity]:
    out: list[NormalIdentity] = []
    for i, ident in enumerate(item.identities):
        try:
            out.append(normalise_identity(ident.kind, ident.value, ident.app_id))
        except ValidationFailed as exc:
            raise ValidationFailed(exc.code, exc.message, path=f"identities.{i}.value") from exc
    return out


def _store_refs(
    workspace: Workspace, items: list[ContactIn]
) -> tuple[dict[str, int], dict[str, int]]:
    store_codes, staff_codes = set(), set()
    for item in items:
        if item.store_code:
            store_codes.add(item.store_code)
        if item.owner_staff_code:
            staff_codes.add(item.owner_staff_code)
        if item.first_touch:
            if item.first_touch.store_code:
                store_codes.add(item.first_touch.store_code)
            if item.first_touch.staff_code:
                staff_codes.add(item.first_touch.staff_code)
    return (
        commerce_queries.store_ids_by_code(workspace=workspace, codes=store_codes),
        commerce_queries.staff_ids_by_code(workspace=workspace, codes=staff_codes),
    )


def _check_refs(item: ContactIn, stores: dict[str, int], staff: dict[str, int]) -> None:
    checks = [
        ("store_code", item.store_code, stores),
        ("owner_staff_code", item.owner_staff_code, staff),
    ]
    if item.first_touch:
        checks += [
            ("first_touch.store_code", item.first_touch.store_code, stores),
            ("first_touch.staff_code", item.first_touch.staff_code, staff),
        ]
    for path, code, known in checks:
        if code and code not in known:
            kind = "store" if "store" in path else "staff member"
            raise ValidationFailed("unknown_reference", f"unknown {kind} code {code!r}", path=path)


def validate_contacts(
    *, workspace: Workspace, items: list[ContactIn]
) -> dict[int, ValidationFailed]:
    """Everything that can be checked before writing, per item, so a batch can be refused whole
    (API) or split into good and rejected rows (import)."""
    stores, staff = _store_refs(workspace, items)
    errors: dict[int, ValidationFailed] = {}
    for i, item in enumerate(items):
        try:
            _normalise_all(item)
            _check_refs(item, stores, staff)
            if item.referred_by is not None:
                normalise_identity(
                    item.referred_by.kind, item.referred_by.value, item.referred_by.app_id
                )
        except ValidationFailed as exc:
            errors[i] = exc
    return errors


@transaction.atomic
def contacts_upsert(
    *,
    workspace: Workspace,
    items: list[ContactIn],
    actor: Any = None,
    api_key: ApiKey | None = None,
) -> list[UpsertResult]:
    """Upsert each contact by its identities. When the identities belong to several contacts they
    are merged into the oldest. Fields given overwrite; fields not given are left alone; a contact
    that ends up unchanged is not written at all, so re-sending a batch is a true no-op."""
    errors = validate_contacts(workspace=workspace, items=items)
    if errors:
        index, exc = next(iter(errors.items()))
        raise ValidationFailed(
            exc.code, exc.message, path=f"{index}.{exc.path}" if exc.path else str(index)
        )
    stores, staff = _store_refs(workspace, items)
    now = timezone.now()
    results = []
    for item in items:
        idents = _normalise_all(item)
        owners = contact_ids_by_identities(workspace=workspace, identities=idents)
        owner_ids = sorted(set(owners.values()))
        merged: list[int] = []
        if owner_ids:
            contacts = list(
                Contact.objects.select_for_update()
                .filter(workspace=workspace, id__in=owner_ids)
                .order_by("first_seen_at", "id")
            )
            contact, others = contacts[0], contacts[1:]
            if others:
                contact_merge(
                    workspace=workspace,
                    survivor=contact,
                    others=others,
                    reason="identities " + ", ".join(sorted({i.kind for i in idents})) + " shared",
                    actor=actor,
                    api_key=api_key,
                )
                merged = [o.id for o in others]
            created = False
        else:
            contact = Contact(
                workspace=workspace,
                first_seen_at=item.first_seen_at or now,
                source_channel=item.source_channel or SourceChannel.OTHER,
            )
            created = True
        before = None if created else _snapshot(contact)
        _apply_fields(contact, item, stores, staff, created=created)
        if item.referred_by is not None:
            ref = normalise_identity(
                item.referred_by.kind, item.referred_by.value, item.referred_by.app_id
            )
            referrer = contact_ids_by_identities(workspace=workspace, identities=[ref]).get(ref.key)
            if referrer and referrer != contact.id:
                contact.referred_by_id = referrer
        if created or merged or _snapshot(contact) != before:
            contact.save()
        known = set(owners)
        Identity.objects.bulk_create(
            [
                Identity(
                    workspace=workspace,
                    contact=contact,
                    kind=i.kind,
                    app_id=i.app_id,
                    value_hash=i.value_hash,
                    value=i.stored_value(),
                    display=i.display(),
                )
                for i in {i.key: i for i in idents if i.key not in known}.values()
            ]
        )
        current = (
            {}
            if created
            else dict(Consent.objects.filter(contact=contact).values_list("channel", "status"))
        )
        for channel, status in item.consent.items():
            if current.get(channel) != status:
                consent_set(
                    workspace=workspace,
                    contact=contact,
                    channel=channel,
                    status=status,
                    source="upsert",
                )
        results.append(UpsertResult(contact=contact, created=created, merged_ids=merged))
        # A later item may merge a contact an earlier item returned: answer with the survivor.
        for earlier in results:
            if earlier.contact.id in merged:
                earlier.contact = contact
    return results


@transaction.atomic
def contacts_create(*, workspace: Workspace, items: list[ContactIn]) -> list[Contact]:
    """Creates one contact per item in a few set-at-a-time statements, storing exactly what
    ``contacts_upsert`` would for a new contact. Only for items known to be new: no identity of
    theirs is stored or shared with another item, and they name no referrer (imports pick such
    rows out; everything else goes through ``contacts_upsert``). An identity stored meanwhile by
    another writer makes the unique index refuse the whole call, which the caller can retry
    through ``contacts_upsert``."""
    errors = validate_contacts(workspace=workspace, items=items)
    if errors:
        index, exc = next(iter(errors.items()))
        raise ValidationFailed(
            exc.code, exc.message, path=f"{index}.{exc.path}" if exc.path else str(index)
        )
    if any(item.referred_by is not None for item in items):
        raise ValidationFailed(
            "referrer_not_supported",
            "contacts_create does not resolve referrers; use contacts_upsert",
        )
    stores, staff = _store_refs(workspace, items)
    now = timezone.now()
    contacts = []
    for item in items:
        contact = Contact(
            workspace=workspace,
            first_seen_at=item.first_seen_at or now,
            source_channel=item.source_channel or SourceChannel.OTHER,
        )
        _apply_fields(contact, item, stores, staff, created=True)
        contact.created_at = contact.updated_at = now
        contacts.append(contact)
    # Rows straight to COPY / executemany: the ORM's bulk_create spends more per row compiling
    # the statement than the database spends storing it.
    for contact, contact_id in zip(contacts, bulk.reserve_ids(Contact, len(contacts)), strict=True):
        contact.id = contact_id
    fields = Contact._meta.concrete_fields
    bulk.insert(
        Contact,
        [f.column for f in fields],
        [
            tuple(
                json.dumps(getattr(c, f.attname))
                if isinstance(f, models.JSONField)
                else getattr(c, f.attname)
                for f in fields
            )
            for c in contacts
        ],
    )
    identities, consents = [], []
    for contact, item in zip(contacts, items, strict=True):
        unique = {i.key: i for i in _normalise_all(item)}
        identities += [
            (
                workspace.id,
                contact.id,
                i.kind,
                i.app_id,
                i.value_hash,
                i.stored_value(),
                i.display(),
                now,
            )
            for i in unique.values()
        ]
        consents += [
            (workspace.id, contact.id, str(channel), str(status), "upsert", now)
            for channel, status in item.consent.items()
        ]
    bulk.insert(
        Identity,
        (
            "workspace_id",
            "contact_id",
            "kind",
            "app_id",
            "value_hash",
            "value",
            "display",
            "created_at",
        ),
        identities,
    )
    bulk.insert(
        Consent,
        ("workspace_id", "contact_id", "channel", "status", "source", "updated_at"),
        consents,
    )
    return contacts


def _snapshot(contact: Contact) -> tuple:
    return tuple(
        getattr(contact, f.attname) for f in Contact._meta.concrete_fields if f.name != "updated_at"
    )


def _apply_fields(
    contact: Contact, item: ContactIn, stores: dict, staff: dict, *, created: bool
) -> None:
    given = item.model_fields_set
    for name in ("name", "nickname", "gender", "birthday", "city"):
        if name in given:
            setattr(contact, name, getattr(item, name))
    if "attributes" in given:
        contact.attributes = {**(contact.attributes or {}), **item.attributes}
    if item.first_seen_at and item.first_seen_at < contact.first_seen_at:
        contact.first_seen_at = item.first_seen_at
    if item.source_channel and (created or contact.source_channel == SourceChannel.OTHER):
        contact.source_channel = item.source_channel
    # First touch is kept once known: later channels never overwrite where a contact came from.
    if item.first_touch is not None:
        ft = item.first_touch
        if not contact.first_touch_campaign:
            contact.first_touch_campaign = ft.campaign
        if not contact.first_touch_state:
            contact.first_touch_state = ft.state
        if ft.store_code and not contact.first_touch_store_id:
            contact.first_touch_store_id = stores[ft.store_code]
        if ft.staff_code and not contact.first_touch_staff_id:
            contact.first_touch_staff_id = staff[ft.staff_code]
    if item.store_code:
        contact.store_id = stores[item.store_code]
    if item.owner_staff_code:
        contact.owner_staff_id = staff[item.owner_staff_code]
    for ident in item.identities:
        if ident.kind == IdentityKind.PHONE and not contact.phone_hash:
            normal = normalise_identity(ident.kind, ident.value)
            contact.phone_hash, contact.phone_enc, contact.phone_masked = (
                normal.value_hash,
                normal.stored_value(),
                normal.display(),
            )
        if ident.kind == IdentityKind.MEMBER_NO and not contact.member_no:
            contact.member_no = ident.value


@transaction.atomic
def contact_merge(
    *,
    workspace: Workspace,
    survivor: Contact,
    others: list[Contact],
    reason: str,
    actor: Any = None,
    api_key: ApiKey | None = None,
) -> Contact:
    """Folds ``others`` into ``survivor``: every row that points at them moves, blank fields are
    filled, the earliest first touch wins, and a ContactMerge row keeps the merged contact's
    snapshot for audit."""
    other_ids = [o.id for o in others if o.id != survivor.id]
    if not other_ids:
        return survivor
    if (
        Contact.objects.filter(id__in=other_ids).exclude(workspace=workspace).exists()
        or survivor.workspace_id != workspace.id
    ):
        raise ValidationFailed(
            "cross_workspace", "Contacts of different workspaces cannot be merged."
        )
    snapshots = {
        o.id: {
            "fields": {
                f: str(getattr(o, f)) if getattr(o, f) is not None else None
                for f in _FILLABLE + ("source_channel", "first_seen_at")
            },
            "identities": list(
                Identity.objects.filter(contact_id=o.id).values("kind", "app_id", "display")
            ),
        }
        for o in others
    }
    moved: dict[str, int] = {}
    for rel in Contact._meta.related_objects:
        model = rel.related_model
        if model is Contact:
            moved["referrals"] = Contact.objects.filter(referred_by_id__in=other_ids).update(
                referred_by=survivor
            )
            continue
        handler = MERGE_HANDLERS.get(model)
        if handler is not None:
            moved[model._meta.label_lower] = handler(workspace, survivor, other_ids)
            continue
        moved[model._meta.label_lower] = model.objects.filter(
            **{f"{rel.field.name}__in": other_ids}
        ).update(**{rel.field.name: survivor})
    for other in sorted(others, key=lambda o: (o.first_seen_at, o.id)):
        for name in _FILLABLE:
            if not getattr(survivor, name) and getattr(other, name):
                setattr(survivor, name, getattr(other, name))
        for name in ("phone_hash", "phone_enc", "phone_masked"):
            if not survivor.phone_hash and other.phone_hash:
                setattr(survivor, name, getattr(other, name))
        for name in ("first_touch_store_id", "first_touch_staff_id", "store_id", "owner_staff_id"):
            if not getattr(survivor, name) and getattr(other, name):
                setattr(survivor, name, getattr(other, name))
        survivor.attributes = {**(other.attributes or {}), **(survivor.attributes or {})}
        if other.first_seen_at < survivor.first_seen_at:
            survivor.first_seen_at = other.first_seen_at
            survivor.source_channel = other.source_channel
    Contact.objects.filter(id__in=other_ids).delete()
    survivor.save()
    for oid in other_ids:
        ContactMerge.objects.create(
            workspace=workspace,
            survivor=survivor,
            merged_contact_id=oid,
            merged_snapshot=snapshots[oid],
            moved=moved,
            reason=reason[:200],
            actor_user=actor_login(actor),
        )
    audit_record(
        workspace=workspace,
        action="contact.merge",
        actor_user=actor,
        actor_api_key=api_key,
        target=survivor,
        data={"merged": other_ids, "reason": reason},
    )
    return survivor


def _merge_consents(workspace: Workspace, survivor: Contact, other_ids: list[int]) -> int:
    """An opt-out anywhere wins; otherwise the most recent answer per channel."""
    rows = list(
        Consent.objects.filter(contact_id__in=[survivor.id, *other_ids]).order_by("updated_at")
    )
    best: dict[str, Consent] = {}
    for row in rows:
        current = best.get(row.channel)
        if (
            current is None
            or current.status != ConsentStatus.OPTED_OUT
            or row.status == ConsentStatus.OPTED_OUT
        ):
            best[row.channel] = row
    Consent.objects.filter(contact_id__in=other_ids).delete()
    for channel, row in best.items():
        Consent.objects.update_or_create(
            contact=survivor,
            channel=channel,
            defaults={
                "workspace": workspace,
                "status": row.status,
                "source": row.source,
                "updated_at": row.updated_at,
            },
        )
    return len(rows)


MERGE_HANDLERS[Consent] = _merge_consents


@transaction.atomic
def consent_set(
    *, workspace: Workspace, contact: Contact, channel: str, status: str, source: str = ""
) -> Consent:
    consent, _ = Consent.objects.update_or_create(
        contact=contact,
        channel=channel,
        defaults={
            "workspace": workspace,
            "status": status,
            "source": source,
            "updated_at": timezone.now(),
        },
    )
    return consent
