"""Writes of the content library (内容库): saving a template with its scene, lifecycle node and
attachments, and publishing it.

HQ (owners and operators, and the API) writes workspace-wide templates and may write a store's;
a staff member writes only for their own store and never touches HQ's. Publishing an HQ
template is what makes it visible to the stores. ``actor`` None is the API or the system, with
HQ's rights."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from siyu.audiences.models import LifecycleStage
from siyu.commerce.models import Product, Store
from siyu.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.messaging import library_queries, rendering
from siyu.messaging.channels import ADAPTERS
from siyu.messaging.models import MessageTemplate, TemplateStatus
from siyu.tenancy.models import Membership, Role, Workspace

#: An uploaded image: at most this big, and one of these formats (told by its first bytes, not
#: by its name or the browser's word).
MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": ("png", "image/png"),
    b"\xff\xd8\xff": ("jpg", "image/jpeg"),
    b"GIF87a": ("gif", "image/gif"),
    b"GIF89a": ("gif", "image/gif"),
}
_APPID = re.compile(r"^wx[0-9a-f]{16}$")
_SCENE_MAX = 32
_UNSET: Any = object()


def _image_kind(upload: UploadedFile) -> tuple[str, str]:
    if upload.size is not None and upload.size > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            "image_too_large",
            f"The image is {upload.size / 1024 / 1024:.1f} MB; at most {MAX_IMAGE_BYTES // 1024 // 1024} MB.",
            path="image",
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    for signature, kind in IMAGE_SIGNATURES.items():
        if head.startswith(signature):
            return kind
    raise ValidationFailed(
        "image_type", "The image must be a PNG, JPEG, GIF or WebP file.", path="image"
    )


def _check_permission(
    workspace: Workspace, actor: Membership | None, store: Store | None
) -> Store | None:
    """The store the template belongs to, as the actor may write it."""
    if actor is None or actor.role in library_queries.HQ_ROLES:
        return store
    if actor.role != Role.STAFF:
        raise PermissionDenied("forbidden", "Only HQ and store staff write templates.")
    own = library_queries.staff_store_id(workspace=workspace, membership=actor)
    if own is None:
        raise PermissionDenied("forbidden", "Your login is not linked to a store.")
    if store is not None and store.id != own:
        raise PermissionDenied("forbidden", "Staff write templates for their own store only.")
    return Store.objects.get(workspace=workspace, id=own)


def _check_url(value: str) -> str:
    value = value.strip()
    if value:
        try:
            URLValidator(schemes=["http", "https"])(value)
        except DjangoValidationError as exc:
            raise ValidationFailed(
                "bad_image_url", "image_url must be an http(s) address.", path="image_url"
            ) from exc
    return value


@transaction.atomic
def template_save(
    *,
    workspace: Workspace,
    name: str,
    channel_kind: str,
    body: str,
    subject: str = "",
    template: MessageTemplate | None = None,
    scene: str = "",
    lifecycle_stage: str = "",
    product: Product | None = None,
    miniprogram_appid: str = "",
    miniprogram_path: str = "",
    image_url: str = "",
    image: UploadedFile | None = None,
    clear_image: bool = False,
    store: Store | None | Any = _UNSET,
    actor: Membership | None = None,
    must_be_new: bool = False,
) -> MessageTemplate:
    """Creates or updates a template: ``template`` when given (renaming allowed), else the one
        named ``name``. Unknown ``{{variables}}`` are refused here, with the list of those that
        exist, and so is {{product}} without an attached product. A new template is a draft; an
        edit keeps its status. ``store`` left out keeps an existing template's owner (HQ for a new
        one, or the staff member's store). ``must_be_new`` refuses a name already taken instead of
    updating that template (the console's "new" form)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("bad_name", "A template name has 1 to 100 characters.", path="name")
    if channel_kind not in ADAPTERS:
        raise ValidationFailed(
            "unknown_channel_kind", f"Unknown channel kind {channel_kind!r}.", path="channel_kind"
        )
    if not body.strip():
        raise ValidationFailed("empty_body", "A template needs a body.", path="body")
    if len(subject) > 200:
        raise ValidationFailed(
            "bad_subject", "A subject has at most 200 characters.", path="subject"
        )
    subject = rendering.normalise(subject, field="subject")
    body = rendering.normalise(body, field="body")
    scene = scene.strip()
    if len(scene) > _SCENE_MAX:
        raise ValidationFailed(
            "bad_scene", f"A scene has at most {_SCENE_MAX} characters.", path="scene"
        )
    if lifecycle_stage and lifecycle_stage not in LifecycleStage.values:
        raise ValidationFailed(
            "bad_lifecycle_stage",
            f"Unknown lifecycle stage {lifecycle_stage!r}; one of {', '.join(LifecycleStage.values)}.",
            path="lifecycle_stage",
        )
    if product is not None and product.workspace_id != workspace.id:
        raise NotFound("product_not_found", "No such product in this workspace.")
    if "product" in rendering.used(subject, body) and product is None:
        raise ValidationFailed(
            "product_missing",
            "The template uses {{product}}; attach a product card to fill it.",
            path="product",
        )
    miniprogram_appid, miniprogram_path = miniprogram_appid.strip(), miniprogram_path.strip()
    if miniprogram_appid or miniprogram_path:
        if not _APPID.match(miniprogram_appid):
            raise ValidationFailed(
                "bad_miniprogram_appid",
                "A mini-program appid is 'wx' and 16 hex digits (wx1234567890abcdef).",
                path="miniprogram_appid",
            )
        if not miniprogram_path or "://" in miniprogram_path or len(miniprogram_path) > 500:
            raise ValidationFailed(
                "bad_miniprogram_path",
                "A mini-program page path is like pages/product/detail?id=1 (no scheme).",
                path="miniprogram_path",
            )
        miniprogram_path = miniprogram_path.lstrip("/")
    image_url = _check_url(image_url)
    if image is not None and image_url:
        raise ValidationFailed(
            "two_images", "Give an uploaded image or an image URL, not both.", path="image"
        )
    extension = _image_kind(image)[0] if image is not None else ""

    if template is None:
        template = MessageTemplate.objects.filter(workspace=workspace, name=name).first()
        if template is not None and must_be_new:
            raise ValidationFailed(
                "duplicate_name", f"A template named {name!r} already exists.", path="name"
            )
    if template is not None:
        if template.workspace_id != workspace.id:
            raise NotFound("template_not_found", "No such template in this workspace.")
        if not library_queries.can_edit(template, actor):
            raise PermissionDenied(
                "forbidden", f"Template {template.name!r} belongs to HQ or another store."
            )
        if (
            MessageTemplate.objects.filter(workspace=workspace, name=name)
            .exclude(id=template.id)
            .exists()
        ):
            raise ValidationFailed(
                "duplicate_name", f"A template named {name!r} already exists.", path="name"
            )
    else:
        template = MessageTemplate(workspace=workspace, status=TemplateStatus.DRAFT)
    if store is _UNSET:
        store = template.store if template.pk else None
    if store is not None and store.workspace_id != workspace.id:
        raise NotFound("store_not_found", "No such store in this workspace.")
    template.store = _check_permission(workspace, actor, store)

    template.name = name
    template.channel_kind = channel_kind
    template.subject = subject
    template.body = body
    template.scene = scene
    template.lifecycle_stage = lifecycle_stage
    template.product = product
    template.miniprogram_appid = miniprogram_appid
    template.miniprogram_path = miniprogram_path
    template.image_url = image_url
    old_image = template.image.name if template.image else ""
    if image is not None or clear_image or image_url:
        template.image = None
    template.save()
    if image is not None:
        # Saved once the template has its id; the stored name never comes from the user.
        template.image.save(f"{template.id}-{timezone.now():%Y%m%d%H%M%S}.{extension}", image)
    if old_image and old_image != (template.image.name if template.image else ""):
        name_to_delete = old_image
        storage = template.image.storage
        transaction.on_commit(lambda: storage.delete(name_to_delete))
    return template


@transaction.atomic
def template_publish(
    *, workspace: Workspace, template: MessageTemplate, actor: Membership | None = None
) -> MessageTemplate:
    """Makes an HQ template visible to every store (a store's own one to nobody new: it only
    marks it ready). HQ publishes HQ templates; a store publishes its own."""
    if template.workspace_id != workspace.id:
        raise NotFound("template_not_found", "No such template in this workspace.")
    if not library_queries.can_edit(template, actor):
        raise PermissionDenied("forbidden", "Only HQ publishes HQ templates.")
    if template.status != TemplateStatus.PUBLISHED:
        template.status = TemplateStatus.PUBLISHED
        template.published_at = timezone.now()
        template.save(update_fields=["status", "published_at", "updated_at"])
    return template
