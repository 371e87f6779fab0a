"""The flat CSV column convention, turned into the nested shape the API schemas take.

A CSV cell that is empty means "not given": the field is left out, so schema defaults apply and
an upsert does not overwrite what is stored. JSONL lines already have the API shape and pass
through unchanged. See docs/import-formats.md for the user-facing description.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from siyu.contacts.models import ConsentChannel, IdentityKind

IDENTITY_KINDS: tuple[str, ...] = tuple(IdentityKind.values)
#: The column holding the app id for app-scoped identities (only the WeChat OpenID today).
APP_ID_COLUMN = {"wechat_openid": "wechat_app_id"}
#: Columns a rejects file adds; ignored on import so a corrected rejects file can be re-imported.
REJECT_COLUMNS = ("_line", "_error")


class CellError(ValueError):
    """A cell that cannot become a value (bad JSON); ``column`` names it for the report."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class Mapped:
    """One row in the API shape, plus which CSV column each renamed schema path came from, so
    errors name the column the user sees."""

    data: dict[str, Any]
    columns: dict[str, str] = field(default_factory=dict)

    def column_for(self, path: str) -> str:
        for prefix in sorted(self.columns, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "."):
                rest = path[len(prefix) + 1 :]
                column = self.columns[prefix]
                # The value of an identity is the cell itself; its kind and app id are ours.
                return column if rest in ("", "value") else f"{column}.{rest}"
        return path


def _json_cell(column: str, text: str) -> Any:
    # pydantic's parser is four times faster; the standard one words the error when there is one.
    try:
        return from_json(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CellError(column, f"not valid JSON ({exc.msg} at character {exc.pos})") from exc


def _columns(prefix: str) -> tuple[tuple[str, str, str | None], ...]:
    """(kind, value column, app id column) per identity kind, spelt once rather than per row."""
    return tuple(
        (
            kind,
            f"{prefix}{kind}",
            f"{prefix}{APP_ID_COLUMN[kind]}" if kind in APP_ID_COLUMN else None,
        )
        for kind in IDENTITY_KINDS
    )


_OWN, _CONTACT, _REFERRER = _columns(""), _columns("contact_"), _columns("referred_by_")


def _identity(
    row: dict[str, str], kind: str, column: str, app_column: str | None
) -> dict[str, str] | None:
    value = row.get(column)
    if not value:
        return None
    ident = {"kind": kind, "value": value}
    if app_column and row.get(app_column):
        ident["app_id"] = row[app_column]
    return ident


def _contact_ref(row: dict[str, str], out: Mapped) -> None:
    """``contact_id`` or the first non-empty ``contact_<kind>`` column (in IdentityKind order)."""
    if row.get("contact_id"):
        out.data["contact_id"] = row["contact_id"]
        return
    for kind, column, app_column in _CONTACT:
        ident = _identity(row, kind, column, app_column)
        if ident:
            out.data["contact"] = ident
            out.columns["contact"] = column
            return


def _plain(
    row: dict[str, str], out: Mapped, names: tuple[str, ...], json_names: tuple[str, ...] = ()
) -> None:
    for name in names:
        if row.get(name):
            out.data[name] = row[name]
    for name in json_names:
        if row.get(name):
            out.data[name] = _json_cell(name, row[name])


CONTACT_REF_COLUMNS = (
    "contact_id",
    *(f"contact_{k}" for k in IDENTITY_KINDS),
    "contact_wechat_app_id",
)
CONTACT_COLUMNS = (
    *IDENTITY_KINDS,
    "wechat_app_id",
    "name",
    "nickname",
    "gender",
    "birthday",
    "city",
    "source_channel",
    "first_seen_at",
    "campaign",
    "qr_state",
    "first_touch_store_code",
    "first_touch_staff_code",
    "store_code",
    "owner_staff_code",
    *(f"referred_by_{k}" for k in IDENTITY_KINDS),
    "referred_by_wechat_app_id",
    *(f"consent_{c}" for c in ConsentChannel.values),
    "attributes",
)
_CONTACT_PLAIN = (
    "name",
    "nickname",
    "gender",
    "birthday",
    "city",
    "source_channel",
    "first_seen_at",
    "store_code",
    "owner_staff_code",
)


def contact_row(row: dict[str, str]) -> Mapped:
    out = Mapped({})
    identities = []
    for kind, column, app_column in _OWN:
        ident = _identity(row, kind, column, app_column)
        if ident:
            out.columns[f"identities.{len(identities)}"] = kind
            identities.append(ident)
    out.data["identities"] = identities
    _plain(row, out, _CONTACT_PLAIN, ("attributes",))
    first_touch = {
        key: row[col]
        for key, col in (
            ("campaign", "campaign"),
            ("state", "qr_state"),
            ("store_code", "first_touch_store_code"),
            ("staff_code", "first_touch_staff_code"),
        )
        if row.get(col)
    }
    if first_touch:
        out.data["first_touch"] = first_touch
        out.columns.update(
            {
                "first_touch.campaign": "campaign",
                "first_touch.state": "qr_state",
                "first_touch.store_code": "first_touch_store_code",
                "first_touch.staff_code": "first_touch_staff_code",
            }
        )
    for kind, column, app_column in _REFERRER:
        ref = _identity(row, kind, column, app_column)
        if ref:
            out.data["referred_by"] = ref
            out.columns["referred_by"] = column
            break
    consent = {c: row[f"consent_{c}"] for c in ConsentChannel.values if row.get(f"consent_{c}")}
    if consent:
        out.data["consent"] = consent
        out.columns.update({f"consent.{c}": f"consent_{c}" for c in consent})
    return out


EVENT_COLUMNS = (
    "event_id",
    "type",
    "name",
    *CONTACT_REF_COLUMNS,
    "occurred_at",
    "channel",
    "duration_seconds",
    "properties",
)


def event_row(row: dict[str, str]) -> Mapped:
    out = Mapped({})
    _plain(
        row,
        out,
        ("event_id", "type", "name", "occurred_at", "channel", "duration_seconds"),
        ("properties",),
    )
    _contact_ref(row, out)
    return out


ORDER_COLUMNS = (
    "order_no",
    *CONTACT_REF_COLUMNS,
    "channel",
    "platform",
    "store_code",
    "staff_code",
    "paid_at",
    "gross_amount",
    "discount_amount",
    "amount",
    "items",
    "refunds",
)


def order_row(row: dict[str, str]) -> Mapped:
    out = Mapped({})
    _plain(
        row,
        out,
        (
            "order_no",
            "channel",
            "platform",
            "store_code",
            "staff_code",
            "paid_at",
            "gross_amount",
            "discount_amount",
            "amount",
        ),
        ("items", "refunds"),
    )
    _contact_ref(row, out)
    return out


PRODUCT_COLUMNS = (
    "sku",
    "name",
    "category",
    "price",
    "cost",
    "is_new",
    "launch_date",
    "attributes",
    "is_active",
)
STORE_COLUMNS = ("code", "name", "city", "region", "opened_at", "is_active")
STAFF_COLUMNS = ("code", "name", "store_code", "wecom_userid", "is_manager", "is_active")
SPEND_COLUMNS = ("channel", "campaign", "month", "amount", "note")


def _flat(
    columns: tuple[str, ...], json_columns: tuple[str, ...] = ()
) -> Callable[[dict[str, str]], Mapped]:
    plain = tuple(c for c in columns if c not in json_columns)

    def convert(row: dict[str, str]) -> Mapped:
        out = Mapped({})
        _plain(row, out, plain, json_columns)
        return out

    return convert


@dataclass(frozen=True)
class CsvFormat:
    columns: tuple[str, ...]
    #: Each inner tuple: at least one of these columns must be in the header.
    required: tuple[tuple[str, ...], ...]
    convert: Callable[[dict[str, str]], Mapped]


_CONTACT_ANY = ("contact_id", *(f"contact_{k}" for k in IDENTITY_KINDS))

CSV_FORMATS: dict[str, CsvFormat] = {
    "contacts": CsvFormat(CONTACT_COLUMNS, (IDENTITY_KINDS,), contact_row),
    "events": CsvFormat(
        EVENT_COLUMNS, (("event_id",), ("type",), ("occurred_at",), _CONTACT_ANY), event_row
    ),
    "orders": CsvFormat(
        ORDER_COLUMNS,
        (
            ("order_no",),
            ("channel",),
            ("paid_at",),
            _CONTACT_ANY,
            ("amount", "gross_amount", "items"),
        ),
        order_row,
    ),
    "products": CsvFormat(
        PRODUCT_COLUMNS, (("sku",), ("name",), ("price",)), _flat(PRODUCT_COLUMNS, ("attributes",))
    ),
    "stores": CsvFormat(STORE_COLUMNS, (("code",), ("name",)), _flat(STORE_COLUMNS)),
    "staff": CsvFormat(STAFF_COLUMNS, (("code",), ("name",)), _flat(STAFF_COLUMNS)),
    "spend": CsvFormat(
        SPEND_COLUMNS, (("channel",), ("month",), ("amount",)), _flat(SPEND_COLUMNS)
    ),
}


def jsonl_row(obj: dict[str, Any]) -> Mapped:
    """JSONL lines are already in the API shape; only the rejects-file bookkeeping is dropped."""
    for name in REJECT_COLUMNS:
        obj.pop(name, None)
    return Mapped(obj)
