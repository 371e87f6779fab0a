"""Reads over the customer pool. Every query starts from the workspace; a staff member's view is
narrowed to their store."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Q, QuerySet

from siyu import bulk
from siyu.commerce import queries as commerce_queries
from siyu.contacts import pii
from siyu.contacts.identities import NormalIdentity, normalise_identity
from siyu.contacts.models import Consent, Contact, ContactMerge, Identity
from siyu.contacts.schemas import IdentityIn
from siyu.errors import NotFound, ValidationFailed
from siyu.tenancy.models import Membership, Role, Workspace


def contacts_visible(
    *, workspace: Workspace, membership: Membership | None = None
) -> QuerySet[Contact]:
    qs = Contact.objects.filter(workspace=workspace)
    if membership is not None and membership.role == Role.STAFF:
        store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
        qs = qs.filter(store_id=store_id) if store_id else qs.none()
    return qs


def contact_get(
    *, workspace: Workspace, contact_id: int, membership: Membership | None = None
) -> Contact:
    contact = (
        contacts_visible(workspace=workspace, membership=membership)
        .select_related(
            "store", "owner_staff", "first_touch_store", "first_touch_staff", "referred_by"
        )
        .filter(id=contact_id)
        .first()
    )
    if contact is None:
        # A merged-away id still answers with where it went, so old links keep working.
        merge = ContactMerge.objects.filter(
            workspace=workspace, merged_contact_id=contact_id
        ).first()
        if (
            merge is not None
            and contacts_visible(workspace=workspace, membership=membership)
            .filter(id=merge.survivor_id)
            .exists()
        ):
            raise NotFound(
                "contact_merged", f"Contact {contact_id} was merged into {merge.survivor_id}."
            )
        raise NotFound("not_found", f"Contact {contact_id} not found.")
    return contact


def contacts_search(
    *, workspace: Workspace, membership: Membership | None = None, q: str = ""
) -> QuerySet[Contact]:
    """Search by name or nickname, member number, a full phone number, or its masked form
    (138****5678) — never by decrypting."""
    qs = contacts_visible(workspace=workspace, membership=membership)
    q = q.strip()
    if not q:
        return qs.order_by("-first_seen_at", "-id")
    cond = Q(name__icontains=q) | Q(nickname__icontains=q) | Q(member_no=q) | Q(phone_masked=q)
    try:
        phone = pii.normalise_phone(q)
        cond |= Q(phone_hash=pii.lookup_hash(f"phone||{phone}"))
    except ValidationFailed:
        pass
    return qs.filter(cond).order_by("-first_seen_at", "-id")


def contact_ids_by_identities(
    *, workspace: Workspace, identities: Iterable[NormalIdentity]
) -> dict[tuple, int]:
    """{identity key: contact id} for those we know, in one query (the unique index leads with
    workspace and value_hash)."""
    hashes = list({ident.value_hash for ident in identities})
    if not hashes:
        return {}
    match, params = bulk.in_list(hashes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT kind, app_id, value_hash, contact_id FROM {Identity._meta.db_table} "  # noqa: S608
            f"WHERE workspace_id = %s AND value_hash {match}",
            [workspace.id, *params],
        )
        return {
            (kind, app_id, value_hash): contact_id
            for kind, app_id, value_hash, contact_id in cursor.fetchall()
        }


def resolve_identity_refs(
    *,
    workspace: Workspace,
    refs: list[IdentityIn | None],
    contact_ids: list[int | None] | None = None,
) -> tuple[list[int | None], dict[int, str]]:
    """Maps each reference (an identity, or a siyu contact id) to a contact id.

    Returns the ids (None where unresolved) and {index: reason} for the unresolved, so the caller
    can report each bad row. An identity repeated in the batch is normalised and hashed once."""
    errors: dict[int, str] = {}
    normal: dict[int, NormalIdentity] = {}
    seen: dict[tuple[str, str, str], NormalIdentity | str] = {}
    for i, ref in enumerate(refs):
        if ref is None:
            continue
        key = (ref.kind, ref.value, ref.app_id)
        done = seen.get(key)
        if done is None:
            try:
                done = normalise_identity(ref.kind, ref.value, ref.app_id)
            except ValidationFailed as exc:
                done = exc.message
            seen[key] = done
        if isinstance(done, str):
            errors[i] = done
        else:
            normal[i] = done
    found = contact_ids_by_identities(workspace=workspace, identities=normal.values())
    contact_ids = contact_ids or [None] * len(refs)
    direct = {cid for cid in contact_ids if cid}
    known_direct = (
        set(Contact.objects.filter(workspace=workspace, id__in=direct).values_list("id", flat=True))
        if direct
        else set()
    )
    out: list[int | None] = []
    for i, ref in enumerate(refs):
        cid = contact_ids[i]
        if cid:
            if cid in known_direct:
                out.append(cid)
            else:
                out.append(None)
                errors[i] = f"unknown contact_id {cid}"
            continue
        if i in errors:
            out.append(None)
            continue
        if ref is None:
            out.append(None)
            errors[i] = "no contact given: send contact_id or an identity"
            continue
        ident = normal[i]
        contact_id = found.get(ident.key)
        if contact_id is None:
            errors[i] = (
                f"unknown contact identity {ident.kind}:{ident.display()}; upsert the contact first"
            )
        out.append(contact_id)
    return out, errors


def identities_for_contact(*, workspace: Workspace, contact: Contact) -> QuerySet[Identity]:
    return Identity.objects.filter(workspace=workspace, contact=contact).order_by(
        "kind", "created_at"
    )


def merges_for_contact(*, workspace: Workspace, contact: Contact) -> QuerySet[ContactMerge]:
    return ContactMerge.objects.filter(workspace=workspace, survivor=contact).order_by(
        "-created_at"
    )


def phone_reveal(*, contact: Contact, membership: Membership | None) -> str:
    """The phone as the viewer may see it: full for owners and operators, masked otherwise."""
    if not contact.phone_enc:
        return ""
    if membership is not None and membership.can_see_personal_data:
        return pii.decrypt(contact.phone_enc)
    return contact.phone_masked


def contacts_list_page(
    *,
    workspace: Workspace,
    membership: Membership | None = None,
    q: str = "",
    number: Any = None,
    per_page: int = 25,
) -> Page:
    """One page of the search ready for a table: store and owner joined, and each row's order
    count and total read for that page's contacts only. Annotated on the search itself, the
    totals grouped every order of the pool before the first row came back (12 s for the first
    page at a million contacts)."""
    rows = contacts_search(workspace=workspace, membership=membership, q=q).select_related(
        "store", "owner_staff"
    )
    page = Paginator(rows, per_page).get_page(number)
    page.object_list = list(page.object_list)
    totals = commerce_queries.order_totals_by_contact(
        workspace=workspace, contact_ids=[c.id for c in page.object_list]
    )
    for contact in page.object_list:
        contact.orders_count, contact.orders_total = totals.get(contact.id, (0, Decimal("0.00")))
    return page


def consents_for_contact(*, workspace: Workspace, contact: Contact) -> QuerySet[Consent]:
    return Consent.objects.filter(workspace=workspace, contact=contact).order_by("channel")
