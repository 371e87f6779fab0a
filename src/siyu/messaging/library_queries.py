"""Reads of the content library (内容库): which templates a member may see, use and edit, a
template's attachments as plain data for the channel adapters, and the values a preview
renders with.

Who sees what: owners, operators and analysts see every template of the workspace. A staff
member (导购) sees the published HQ templates and their own store's (drafts included), and
edits only their store's."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from siyu.commerce import queries as commerce_queries
from siyu.contacts import queries as contacts_queries
from siyu.contacts.models import Contact
from siyu.errors import NotFound
from siyu.messaging import rendering
from siyu.messaging.models import MessageTemplate, TemplateStatus
from siyu.tenancy.models import Membership, Role, Workspace

HQ_ROLES = (Role.OWNER, Role.OPERATOR)


def staff_store_id(*, workspace: Workspace, membership: Membership | None) -> int | None:
    """The store a staff login works for; None for every other role (and for the API)."""
    if membership is None or membership.role != Role.STAFF:
        return None
    return commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)


def templates_visible(
    *, workspace: Workspace, membership: Membership | None = None
) -> QuerySet[MessageTemplate]:
    rows = MessageTemplate.objects.filter(workspace=workspace)
    if membership is not None and membership.role == Role.STAFF:
        store_id = staff_store_id(workspace=workspace, membership=membership)
        own = Q(store_id=store_id) if store_id else Q(pk__in=[])
        rows = rows.filter(Q(store__isnull=True, status=TemplateStatus.PUBLISHED) | own)
    return rows


def templates_list(
    *,
    workspace: Workspace,
    membership: Membership | None = None,
    scene: str = "",
    lifecycle_stage: str = "",
    channel_kind: str = "",
    status: str = "",
    owner: str = "",
) -> QuerySet[MessageTemplate]:
    """The library filtered; ``owner`` is "hq", "store" (any store's) or a store id."""
    rows = templates_visible(workspace=workspace, membership=membership)
    if scene:
        rows = rows.filter(scene=scene)
    if lifecycle_stage:
        rows = rows.filter(lifecycle_stage=lifecycle_stage)
    if channel_kind:
        rows = rows.filter(channel_kind=channel_kind)
    if status:
        rows = rows.filter(status=status)
    if owner == "hq":
        rows = rows.filter(store__isnull=True)
    elif owner == "store":
        rows = rows.filter(store__isnull=False)
    elif owner.isdigit():
        rows = rows.filter(store_id=int(owner))
    return rows.select_related("store", "product").order_by("-updated_at", "-id")


def template_get(
    *, workspace: Workspace, template_id: int, membership: Membership | None = None
) -> MessageTemplate:
    found = (
        templates_visible(workspace=workspace, membership=membership)
        .select_related("store", "product")
        .filter(id=template_id)
        .first()
    )
    if found is None:
        raise NotFound("template_not_found", f"No template {template_id} in this workspace.")
    return found


def can_edit(template: MessageTemplate, membership: Membership | None) -> bool:
    """HQ roles edit everything; a staff member only their own store's templates."""
    if membership is None or membership.role in HQ_ROLES:
        return True
    if membership.role != Role.STAFF or template.store_id is None:
        return False
    return template.store_id == staff_store_id(workspace=template.workspace, membership=membership)


def attachments_of(template: MessageTemplate) -> dict[str, Any] | None:
    """What travels with each message of ``template`` to the adapter, as plain data."""
    found: dict[str, Any] = {}
    if template.product_id:
        product = template.product
        found["product"] = {
            "id": product.id,
            "sku": product.sku,
            "name": product.name,
            "price": str(product.price),
        }
    if template.miniprogram_appid:
        found["miniprogram"] = {
            "appid": template.miniprogram_appid,
            "path": template.miniprogram_path,
        }
    if template.image_url:
        found["image"] = {"url": template.image_url}
    elif template.image:
        found["image"] = {
            "file": template.image.name,
            "name": template.image.name.rsplit("/", 1)[-1],
        }
    return found or None


def preview_contact(
    *, workspace: Workspace, membership: Membership | None, contact_id: int | None = None
) -> Contact | None:
    """The contact a preview renders for: the one asked for if visible, else the newest."""
    rows = contacts_queries.contacts_visible(workspace=workspace, membership=membership)
    rows = rows.select_related("store")
    if contact_id is not None:
        return rows.filter(id=contact_id).first()
    return rows.order_by("-id").first()


def contact_values(contact: Contact | None) -> dict[str, str]:
    """The contact variables' values, as the outbox's SQL computes them."""
    if contact is None:
        return {}
    return {
        "nickname": contact.nickname or contact.name or "",
        "name": contact.name or contact.nickname or "",
        "city": contact.city or "",
        "member_no": contact.member_no or "",
        "store": contact.store.name if contact.store_id else "",
    }


def preview(
    template_subject: str,
    template_body: str,
    *,
    contact: Contact | None,
    constants: dict[str, str],
) -> tuple[str, str]:
    """Subject and body rendered for one contact; variables without a value stay visible."""
    values = {**contact_values(contact), **constants}
    return rendering.render(template_subject, values), rendering.render(template_body, values)
