"""The segment rule language: a JSON tree validated and compiled, in one pass, to ONE Ibis
expression yielding the ids of the matching contacts of a workspace.

Groups nest ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": {...}}`` at most five deep;
the leaves are contact fields, identities, consent, tags, order aggregates, event counts, model
scores and the layers of the last layers refresh (RFM class, lifecycle stage, intent layer;
docs/layers.md) (docs/segment-rules.md has the full grammar with examples). Behaviour is expressed as
semi-joins on aggregated subqueries, so the database does the work in one statement whatever
the number of contacts. Every refusal is a ``ValidationFailed`` whose ``path`` names the
offending part of the rule, e.g. ``all.2.orders.count``.

Windows ("in the last 90 days") are turned into UTC cut-off timestamps here, in Python: SQLite
has no portable date arithmetic, and a literal timestamp compares correctly everywhere.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import ibis
import ibis.expr.operations as ops
from django.utils import translation
from ibis.expr.types import BooleanValue, Column, Table

from siyu.analytics.tables import dialect, table, to_sql, utc_cutoff
from siyu.audiences.layers import aliases
from siyu.audiences.models import (
    ContactLayer,
    ContactTag,
    IntentLayer,
    LifecycleStage,
    RFMClass,
    Tag,
)
from siyu.commerce.models import Order, OrderChannel, OrderItem, OrderStatus, Product, Staff, Store
from siyu.contacts.models import (
    Consent,
    ConsentChannel,
    ConsentStatus,
    Contact,
    Identity,
    IdentityKind,
    SourceChannel,
)
from siyu.errors import ValidationFailed
from siyu.events.models import Event, EventType
from siyu.insights.models import ChurnBand, ContactScore
from siyu.tenancy.models import Workspace

MAX_DEPTH = 5
MAX_CONDITIONS = 100
MAX_LIST = 1000
MAX_WINDOW_DAYS = 3650
_PROPERTY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _fail(message: str, path: str) -> ValidationFailed:
    return ValidationFailed("invalid_rule", message, path=path or None)


def _join(path: str, *parts: Any) -> str:
    return ".".join([p for p in [path, *map(str, parts)] if p])


# --- contact fields -------------------------------------------------------------------------

_TEXT_OPS = ("eq", "ne", "in", "not_in", "contains", "is_set")
_CHOICE_OPS = ("eq", "ne", "in", "not_in", "is_set")
_REF_OPS = ("eq", "ne", "in", "not_in", "is_set")
_MONTH_OPS = ("eq", "ne", "in", "not_in", "gte", "lte", "is_set")
_TIME_OPS = ("gte", "lt", "within_days", "older_than_days")


@dataclass(frozen=True)
class _Field:
    kind: str  # text, choice, store, staff, month, date-time
    column: str
    ops: tuple[str, ...]
    choices: tuple[str, ...] = ()


FIELDS: dict[str, _Field] = {
    "contact.city": _Field("text", "city", _TEXT_OPS),
    "contact.first_touch_campaign": _Field("text", "first_touch_campaign", _TEXT_OPS),
    "contact.first_touch_state": _Field("text", "first_touch_state", _TEXT_OPS),
    "contact.gender": _Field("choice", "gender", _CHOICE_OPS, ("m", "f")),
    "contact.source_channel": _Field(
        "choice", "source_channel", _CHOICE_OPS, tuple(SourceChannel.values)
    ),
    "contact.store": _Field("store", "store_id", _REF_OPS),
    "contact.first_touch_store": _Field("store", "first_touch_store_id", _REF_OPS),
    "contact.owner_staff": _Field("staff", "owner_staff_id", _REF_OPS),
    "contact.first_touch_staff": _Field("staff", "first_touch_staff_id", _REF_OPS),
    "contact.birthday_month": _Field("month", "birthday", _MONTH_OPS),
    "contact.first_seen_at": _Field("date-time", "first_seen_at", _TIME_OPS),
}

_NUMBER_OPS = ("gt", "gte", "lt", "lte", "eq")


@dataclass
class _Compiler:
    workspace: Workspace
    now: datetime
    #: Set when compiling a reusable template (``rule_sql``): each relative cut-off becomes a
    #: stand-in instant and its distance from ``now`` is listed in ``cutoffs``.
    parametric: bool = False
    cutoffs: list[timedelta] = field(default_factory=list)
    conditions: int = 0
    refs: list[tuple[str, int, str]] = field(default_factory=list)
    #: Per "contact id in (these ids)" predicate: the ids, and whether they can repeat. A rule
    #: that is one such condition is answered from the ids alone (see ``compile_rule``).
    id_sets: dict[int, tuple[BooleanValue, Column, bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.c = table(Contact)
        self.ws = self.workspace.id

    def member_of(self, ids: Column, *, repeats: bool) -> BooleanValue:
        """The contact's id is among ``ids`` (a ``contact_id`` column of rows of this
        workspace); ``repeats`` says whether an id can come more than once."""
        pred = self.c.id.isin(ids)
        self.id_sets[id(pred)] = (pred, ids, repeats)
        return pred

    def not_member_of(self, rows: Table) -> BooleanValue:
        """No row of ``rows`` (with a ``contact_id`` column) is the contact's: NOT EXISTS,
        which PostgreSQL runs as a hash anti-join. ``NOT IN (subquery)`` it cannot turn into a
        join (NULL semantics), and once the ids outgrow work_mem it rescans them for every
        contact — quadratic at a million contacts."""
        match = rows.contact_id == self.c.id
        return ~ops.ExistsSubquery(ops.Filter(rows.op(), [match.op()])).to_expr()

    def ids_alone(self, pred: BooleanValue) -> Table | None:
        """The matching ids without the contacts table, when ``pred`` is one "id among these"
        condition: its rows are already this workspace's, so the semi-join back to contacts
        would only add a join of the whole pool."""
        found = self.id_sets.get(id(pred))
        if found is None:
            return None
        _, ids, repeats = found
        rows = ids.name("contact_id").as_table()
        return rows.distinct() if repeats else rows

    # --- tree --------------------------------------------------------------------------------

    def node(self, node: Any, path: str, depth: int) -> BooleanValue:
        if not isinstance(node, dict) or not node:
            raise _fail("a rule is a non-empty JSON object", path)
        for group in ("all", "any", "not"):
            if group in node:
                if len(node) != 1:
                    raise _fail(f"'{group}' must be the only key of its object", path)
                if depth + 1 > MAX_DEPTH:
                    raise _fail(f"nesting deeper than {MAX_DEPTH} levels", _join(path, group))
                return self.group(group, node[group], _join(path, group), depth + 1)
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _fail(f"a rule has at most {MAX_CONDITIONS} conditions", path)
        if "field" in node:
            return self.field(node, path)
        leaves: dict[str, Callable[[Any, str], BooleanValue]] = {
            "has_identity": self.has_identity,
            "consent": self.consent,
            "tag": self.tag,
            "orders": self.orders,
            "event": self.event,
            "score": self.score,
            "rfm_class": lambda v, p: self.layer("rfm_class", RFMClass, v, p),
            "lifecycle": lambda v, p: self.layer("lifecycle_stage", LifecycleStage, v, p),
            "intent": lambda v, p: self.layer("intent_layer", IntentLayer, v, p),
        }
        if len(node) == 1:
            key, value = next(iter(node.items()))
            if key in leaves:
                return leaves[key](value, _join(path, key))
        keys = ", ".join(sorted(map(str, node)))
        raise _fail(
            f"unknown condition ({keys}): expected all, any, not, field, has_identity, consent, tag, orders, event, score, rfm_class, lifecycle or intent",
            path,
        )

    def group(self, group: str, value: Any, path: str, depth: int) -> BooleanValue:
        if group == "not":
            inner = self.node(value, path, depth)
            found = self.id_sets.get(id(inner))
            if found is not None:
                return self.not_member_of(found[1].name("contact_id").as_table())
            return ~inner
        if not isinstance(value, list) or not value:
            raise _fail(f"'{group}' takes a non-empty list of rules", path)
        preds = [self.node(child, _join(path, i), depth) for i, child in enumerate(value)]
        return ibis.and_(*preds) if group == "all" else ibis.or_(*preds)

    # --- contact fields ----------------------------------------------------------------------

    def field(self, node: dict, path: str) -> BooleanValue:
        extra = set(node) - {"field", "op", "value"}
        if extra:
            raise _fail(f"unknown key '{sorted(extra)[0]}' in a field condition", path)
        name, op = node.get("field"), node.get("op")
        spec = FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise _fail(f"unknown field '{name}'", _join(path, "field"))
        if op not in spec.ops:
            if op not in {o for f in FIELDS.values() for o in f.ops} | set(_NUMBER_OPS):
                raise _fail(f"unknown operator '{op}'", _join(path, "op"))
            raise _fail(
                f"operator '{op}' does not apply to {spec.kind} field {name}", _join(path, "op")
            )
        if "value" not in node:
            raise _fail("a field condition needs a value", path)
        value, vpath = node["value"], _join(path, "value")
        col = self.c[spec.column]
        if spec.kind == "date-time":
            return self.time_condition(col, op, value, vpath)
        if op == "is_set":
            if not isinstance(value, bool):
                raise _fail("is_set takes true or false", vpath)
            is_set = (
                col.notnull() & (col != "")
                if spec.kind == "text" or spec.kind == "choice"
                else col.notnull()
            )
            return is_set if value else ~is_set
        if spec.kind == "month":
            col = col.month()
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                raise _fail(f"'{op}' takes a list of 1 to {MAX_LIST} values", vpath)
            values = [self.scalar(spec, v, _join(vpath, i)) for i, v in enumerate(value)]
            match = col.isin(values)
            return match if op == "in" else ~match | col.isnull()
        v = self.scalar(spec, value, vpath)
        if op == "contains":
            if not v:
                raise _fail("contains needs a non-empty text", vpath)
            return col.contains(v)
        return {
            "eq": lambda: col == v,
            "ne": lambda: (col != v) | col.isnull(),
            "gte": lambda: col >= v,
            "lte": lambda: col <= v,
        }[op]()

    def scalar(self, spec: _Field, value: Any, path: str) -> Any:
        if spec.kind in ("text", "choice"):
            if not isinstance(value, str) or len(value) > 200:
                raise _fail("expected a text of at most 200 characters", path)
            if spec.choices and value not in spec.choices:
                raise _fail(f"'{value}' is not one of: {', '.join(spec.choices)}", path)
            return value
        if spec.kind == "month":
            if not _is_int(value) or not 1 <= value <= 12:
                raise _fail("a month is a whole number from 1 to 12", path)
            return value
        return self.ref(spec.kind, value, path)

    def ref(self, kind: str, value: Any, path: str) -> int:
        if not _is_int(value):
            raise _fail(f"a {kind} is given by its id (a whole number)", path)
        self.refs.append((kind, value, path))
        return value

    # --- times -------------------------------------------------------------------------------

    def timestamp(self, value: Any, path: str, *, starts: bool) -> datetime:
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None:
            raise _fail("expected an ISO 8601 timestamp, e.g. 2026-05-01T00:00:00+08:00", path)
        if moment.tzinfo is None:
            raise _fail("timestamp needs a time zone offset, e.g. 2026-05-01T00:00:00+08:00", path)
        if starts and moment > self.now:
            raise _fail("the window starts in the future", path)
        return utc_cutoff(moment)

    def days(self, value: Any, path: str, name: str) -> timedelta:
        if not _is_int(value) or value <= 0:
            raise _fail(f"{name} must be positive", path)
        if value > MAX_WINDOW_DAYS:
            raise _fail(f"{name} is at most {MAX_WINDOW_DAYS}", path)
        return timedelta(days=value)

    def before_now(self, distance: timedelta) -> datetime:
        """The instant ``distance`` before ``now``, or its stand-in in a template."""
        if not self.parametric:
            return utc_cutoff(self.now - distance)
        self.cutoffs.append(distance)
        return _stand_in(len(self.cutoffs) - 1)

    def time_condition(self, col: Column, op: str, value: Any, path: str) -> BooleanValue:
        if op == "within_days":
            return col >= self.before_now(self.days(value, path, op))
        if op == "older_than_days":
            return col < self.before_now(self.days(value, path, op))
        moment = self.timestamp(value, path, starts=op == "gte")
        return col >= moment if op == "gte" else col < moment

    def time_conditions(self, col: Column, spec: Any, path: str) -> BooleanValue:
        if not isinstance(spec, dict) or not spec:
            raise _fail(f"expected an object with any of {', '.join(_TIME_OPS)}", path)
        preds = []
        for op, value in spec.items():
            if op not in _TIME_OPS:
                raise _fail(f"unknown operator '{op}'", _join(path, op))
            preds.append(self.time_condition(col, op, value, _join(path, op)))
        return ibis.and_(*preds)

    def window(self, spec: dict, col: Column, path: str) -> list[BooleanValue]:
        """``window_days`` (the last N days) or ``since``/``until`` (timestamps) on ``col``."""
        if "window_days" in spec and "since" in spec:
            raise _fail("give window_days or since, not both", path)
        preds = []
        if "window_days" in spec:
            preds.append(
                col
                >= self.before_now(
                    self.days(spec["window_days"], _join(path, "window_days"), "window_days")
                )
            )
        if "since" in spec:
            preds.append(col >= self.timestamp(spec["since"], _join(path, "since"), starts=True))
        if "until" in spec:
            preds.append(col < self.timestamp(spec["until"], _join(path, "until"), starts=False))
        return preds

    # --- identities, consent, tags -----------------------------------------------------------

    def has_identity(self, value: Any, path: str) -> BooleanValue:
        if value not in IdentityKind.values:
            raise _fail(f"'{value}' is not one of: {', '.join(IdentityKind.values)}", path)
        i = table(Identity)
        return self.member_of(
            i.filter(i.workspace_id == self.ws, i.kind == value).contact_id, repeats=True
        )

    def consent(self, value: Any, path: str) -> BooleanValue:
        if not isinstance(value, dict) or set(value) != {"channel", "status"}:
            raise _fail('consent takes {"channel": ..., "status": ...}', path)
        if value["channel"] not in ConsentChannel.values:
            raise _fail(
                f"'{value['channel']}' is not one of: {', '.join(ConsentChannel.values)}",
                _join(path, "channel"),
            )
        if value["status"] not in ConsentStatus.values:
            raise _fail(
                f"'{value['status']}' is not one of: {', '.join(ConsentStatus.values)}",
                _join(path, "status"),
            )
        t = table(Consent)
        rows = t.filter(t.workspace_id == self.ws, t.channel == value["channel"])
        if value["status"] == ConsentStatus.UNKNOWN:
            # Never asked counts as unknown: no definite answer on this channel.
            return self.not_member_of(rows.filter(rows.status != ConsentStatus.UNKNOWN))
        # One answer per contact and channel.
        return self.member_of(rows.filter(rows.status == value["status"]).contact_id, repeats=False)

    def tag(self, value: Any, path: str) -> BooleanValue:
        tag_id = self.ref("tag", value, path)
        t = table(ContactTag)
        return self.member_of(
            t.filter(t.workspace_id == self.ws, t.tag_id == tag_id).contact_id, repeats=False
        )

    # --- behaviour ---------------------------------------------------------------------------

    def orders(self, spec: Any, path: str) -> BooleanValue:
        allowed = {
            "count",
            "sum",
            "avg",
            "first_at",
            "last_at",
            "window_days",
            "since",
            "until",
            "channel",
            "store",
            "sku",
            "category",
        }
        self.check_keys(spec, allowed, path, "orders")
        o = table(Order)
        preds = [
            o.workspace_id == self.ws,
            o.status != OrderStatus.REFUNDED,
            *self.window(spec, o.paid_at, path),
        ]
        if "channel" in spec:
            channels = self.texts(
                spec["channel"], _join(path, "channel"), tuple(OrderChannel.values)
            )
            preds.append(o.channel.isin(channels))
        if "store" in spec:
            stores = self.many(
                spec["store"], _join(path, "store"), lambda v, p: self.ref("store", v, p)
            )
            preds.append(o.store_id.isin(stores))
        items = table(OrderItem)
        if "sku" in spec:
            skus = self.texts(spec["sku"], _join(path, "sku"))
            preds.append(
                o.id.isin(
                    items.filter(items.workspace_id == self.ws, items.sku.isin(skus)).order_id
                )
            )
        if "category" in spec:
            categories = self.texts(spec["category"], _join(path, "category"))
            p = table(Product)
            products = p.filter(p.workspace_id == self.ws, p.category.isin(categories)).id
            preds.append(
                o.id.isin(
                    items.filter(
                        items.workspace_id == self.ws, items.product_id.isin(products)
                    ).order_id
                )
            )
        f = o.filter(*preds)
        net = f.amount - f.refunded_amount
        metrics = {
            "count": ("n", f.count()),
            "sum": ("total", net.sum()),
            "avg": ("average", net.mean()),
            "first_at": ("first", f.paid_at.min()),
            "last_at": ("last", f.paid_at.max()),
        }
        wanted = [key for key in metrics if key in spec]
        if not wanted:
            # "Has a matching order": a plain semi-join, no aggregate at all.
            return self.member_of(f.contact_id, repeats=True)
        # Only the aggregates the conditions read: every extra one costs time on each group.
        agg = f.group_by("contact_id").aggregate(**dict(metrics[key] for key in wanted))
        conds: list[BooleanValue] = []
        zero_passes = True  # would a contact without any matching order satisfy every condition?
        for key, column in (("count", "n"), ("sum", "total"), ("avg", "average")):
            if key in spec:
                cond, zero_ok = self.number_conditions(
                    agg[column], spec[key], _join(path, key), whole=key == "count"
                )
                conds.append(cond)
                zero_passes = zero_passes and zero_ok and key != "avg"
        for key, column in (("first_at", "first"), ("last_at", "last")):
            if key in spec:
                conds.append(self.time_conditions(agg[column], spec[key], _join(path, key)))
                zero_passes = False
        return self.aggregate_match(agg, ibis.and_(*conds), zero_passes)

    def event(self, spec: Any, path: str) -> BooleanValue:
        allowed = {
            "type",
            "name",
            "min_count",
            "max_count",
            "window_days",
            "since",
            "until",
            "properties",
        }
        self.check_keys(spec, allowed, path, "event")
        if spec.get("type") not in EventType.values:
            raise _fail(
                f"event type must be one of: {', '.join(EventType.values)}", _join(path, "type")
            )
        e = table(Event)
        preds = [
            e.workspace_id == self.ws,
            e.type == spec["type"],
            *self.window(spec, e.occurred_at, path),
        ]
        if "name" in spec:
            preds.append(e.name == self.texts(spec["name"], _join(path, "name"), single=True)[0])
        props = spec.get("properties", {})
        if not isinstance(props, dict):
            raise _fail("properties is an object of name: value", _join(path, "properties"))
        for key, value in props.items():
            ppath = _join(path, "properties", key)
            if not _PROPERTY_NAME.match(str(key)):
                raise _fail(
                    f"property name '{key}' must be letters, digits or _ (at most 64)", ppath
                )
            if isinstance(value, bool):
                preds.append(e.properties[key].bool == value)
            elif _is_int(value):
                preds.append(e.properties[key].int == value)
            elif isinstance(value, str) and len(value) <= 200:
                preds.append(e.properties[key].str == value)
            else:
                raise _fail(
                    "a property value is a text (at most 200 characters), a whole number or true/false",
                    ppath,
                )
        bounds = {}
        for key in ("min_count", "max_count"):
            if key in spec:
                if not _is_int(spec[key]) or spec[key] < 0:
                    raise _fail(f"{key} must be a whole number of at least 0", _join(path, key))
                bounds[key] = spec[key]
        low = bounds.get("min_count", 0 if "max_count" in bounds else 1)
        high = bounds.get("max_count")
        if high is not None and low > high:
            raise _fail("min_count is larger than max_count", _join(path, "min_count"))
        f = e.filter(*preds)
        if (low, high) in ((1, None), (0, 0)):
            # Did it at all / did not do it: a plain (anti-)semi-join, no count to build.
            if low == 1:
                return self.member_of(f.contact_id, repeats=True)
            return self.not_member_of(f)
        agg = f.group_by("contact_id").aggregate(n=f.count())
        conds = [agg.n >= low] + ([agg.n <= high] if high is not None else [])
        return self.aggregate_match(agg, ibis.and_(*conds), low == 0)

    def score(self, spec: Any, path: str) -> BooleanValue:
        """Customer-value model scores (the latest fit): P(alive), predicted CLV, expected
        purchases and churn band. Contacts without a score (never bought, or no fit yet) never
        match, so "P(alive) below 0.3" cannot silently include people the model knows nothing of."""
        numeric = {
            "p_alive": "p_alive",
            "clv": "clv",
            "expected_order_value": "expected_order_value",
            "expected_purchases_30d": "expected_purchases_30d",
            "expected_purchases_90d": "expected_purchases_90d",
            "expected_purchases_365d": "expected_purchases_365d",
        }
        self.check_keys(spec, {*numeric, "churn_band"}, path, "score")
        if not spec:
            raise _fail("score takes at least one of: " + ", ".join([*numeric, "churn_band"]), path)
        s = table(ContactScore)
        preds = [s.workspace_id == self.ws]
        for key, column in numeric.items():
            if key in spec:
                cond, _ = self.number_conditions(
                    s[column], spec[key], _join(path, key), whole=False
                )
                if key == "p_alive" and any(
                    Decimal(str(v)) > 1 for v in spec[key].values() if not isinstance(v, bool)
                ):
                    raise _fail("P(alive) is a probability between 0 and 1", _join(path, key))
                preds.append(cond)
        if "churn_band" in spec:
            bands = self.texts(
                spec["churn_band"], _join(path, "churn_band"), tuple(ChurnBand.values)
            )
            preds.append(s.churn_band.isin(bands))
        return self.member_of(s.filter(*preds).contact_id, repeats=False)

    def layer(
        self,
        column: str,
        choices: type[RFMClass | LifecycleStage | IntentLayer],
        value: Any,
        path: str,
    ) -> BooleanValue:
        """RFM class, lifecycle stage or intent layer as of the last layers refresh, by code or
        Chinese name, one or a list. Contacts not yet layered never match."""
        known = aliases(choices)

        def one(v: Any, p: str) -> str:
            if not isinstance(v, str) or v not in known:
                codes = ", ".join(choices.values)
                with translation.override(None):
                    names = ", ".join(str(c.label) for c in choices)
                raise _fail(f"'{v}' is not one of: {codes} (or {names})", p)
            return known[v]

        codes = list(dict.fromkeys(self.many(value, path, one)))
        t = table(ContactLayer)
        return self.member_of(
            t.filter(t.workspace_id == self.ws, t[column].isin(codes)).contact_id, repeats=False
        )

    def aggregate_match(self, agg: Table, cond: BooleanValue, zero_passes: bool) -> BooleanValue:
        """Contacts whose aggregate row meets ``cond``. When a contact with no rows at all also
        meets it (did-not-do, "at most 2 orders"), match everyone except those whose row fails."""
        if zero_passes:
            return self.not_member_of(agg.filter(~cond))
        return self.member_of(agg.filter(cond).contact_id, repeats=False)

    def number_conditions(
        self, col: Column, spec: Any, path: str, *, whole: bool
    ) -> tuple[BooleanValue, bool]:
        """The comparisons in ``spec`` on ``col`` and whether 0 satisfies them all."""
        if not isinstance(spec, dict) or not spec:
            raise _fail(f"expected an object with any of {', '.join(_NUMBER_OPS)}", path)
        preds, zero_ok = [], True
        for op, raw in spec.items():
            if op not in _NUMBER_OPS:
                raise _fail(f"unknown operator '{op}'", _join(path, op))
            value = self.number(raw, _join(path, op), whole=whole)
            preds.append(
                {
                    "gt": col > value,
                    "gte": col >= value,
                    "lt": col < value,
                    "lte": col <= value,
                    "eq": col == value,
                }[op]
            )
            zero_ok = (
                zero_ok
                and {
                    "gt": value < 0,
                    "gte": value <= 0,
                    "lt": value > 0,
                    "lte": value >= 0,
                    "eq": value == 0,
                }[op]
            )
        return ibis.and_(*preds), zero_ok

    @staticmethod
    def number(value: Any, path: str, *, whole: bool) -> int | Decimal:
        if whole:
            if not _is_int(value) or value < 0:
                raise _fail("expected a whole number of at least 0", path)
            return value
        try:
            amount = (
                Decimal(str(value))
                if isinstance(value, int | float | str) and not isinstance(value, bool)
                else None
            )
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise _fail("expected an amount of at least 0, e.g. 199.00", path)
        return amount.quantize(Decimal("0.01"))

    # --- helpers -----------------------------------------------------------------------------

    @staticmethod
    def check_keys(spec: Any, allowed: set[str], path: str, what: str) -> None:
        if not isinstance(spec, dict):
            raise _fail(f"{what} takes an object", path)
        for key in spec:
            if key not in allowed:
                raise _fail(
                    f"unknown key '{key}' in {what}; expected one of: {', '.join(sorted(allowed))}",
                    _join(path, key),
                )

    def texts(
        self, value: Any, path: str, choices: tuple[str, ...] = (), *, single: bool = False
    ) -> list[str]:
        spec = _Field("choice" if choices else "text", "", (), choices)
        if single or not isinstance(value, list):
            return [self.scalar(spec, value, path)]
        return self.many(value, path, lambda v, p: self.scalar(spec, v, p))

    @staticmethod
    def many(value: Any, path: str, one: Callable[[Any, str], Any]) -> list[Any]:
        if not isinstance(value, list):
            return [one(value, path)]
        if not value or len(value) > MAX_LIST:
            raise _fail(f"expected a list of 1 to {MAX_LIST} values", path)
        return [one(v, _join(path, i)) for i, v in enumerate(value)]


def _check_refs(workspace: Workspace, refs: list[tuple[str, int, str]]) -> None:
    """Every tag, store and staff id the rule names must belong to this workspace."""
    models = {"tag": Tag, "store": Store, "staff": Staff}
    known: dict[str, set[int]] = {}
    for kind, model in models.items():
        ids = {v for k, v, _ in refs if k == kind}
        known[kind] = (
            set(model.objects.filter(workspace=workspace, id__in=ids).values_list("id", flat=True))
            if ids
            else set()
        )
    for kind, value, path in refs:
        if value not in known[kind]:
            raise _fail(f"{kind} {value} does not exist in this workspace", path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def compile_rule(
    *, workspace: Workspace, rule: Any, now: datetime, store_id: int | None = None
) -> Table:
    """Validates ``rule`` and returns the Ibis expression of the matching contact ids (one
    column, ``contact_id``, each id once), optionally narrowed to one store's contacts (a staff
    member's view). ``now`` anchors every relative window. A rule of one positive condition on
    another table (orders, layers, tags, ...) selects that table's contact ids directly."""
    return _compiled(_Compiler(workspace=workspace, now=now), rule, store_id)


def _compiled(compiler: _Compiler, rule: Any, store_id: int | None) -> Table:
    workspace = compiler.workspace
    predicate = compiler.node(rule, "", 0)
    _check_refs(workspace, compiler.refs)
    if store_id is None and (alone := compiler.ids_alone(predicate)) is not None:
        return alone
    c = compiler.c
    scope = [c.workspace_id == workspace.id]
    if store_id is not None:
        scope.append(c.store_id == store_id)
    return c.filter(*scope, predicate).select(contact_id=c.id)


def validate_rule(*, workspace: Workspace, rule: Any, now: datetime) -> None:
    """Raises ValidationFailed naming the offending path when ``rule`` is not a valid rule."""
    compile_rule(workspace=workspace, rule=rule, now=now)


# --- templates ---------------------------------------------------------------------------------

#: Stand-ins for a template's cut-offs: the k-th is k seconds after 1900-01-01 UTC, an instant no
#: stored row holds. A rule that itself mentions that day is compiled without a template.
_STAND_IN_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
_STAND_IN_DAY = "1900-01-01"
#: Where a cut-off goes in each engine's SQL: Django's cursor takes ``%s``, DuckDB ``?``.
_PLACEHOLDER = {
    "postgres": "CAST(%s AS TIMESTAMPTZ)",
    "sqlite": "%s",
    "duckdb": "CAST(? AS TIMESTAMPTZ)",
}
_TEMPLATES_KEPT = 512


def _stand_in(k: int) -> datetime:
    return _STAND_IN_EPOCH + timedelta(seconds=k)


@functools.cache
def _stand_in_sql(engine: str, k: int) -> str:
    """The engine's literal for stand-in ``k``, as Ibis writes it."""
    sql = to_sql(ibis.literal(_stand_in(k)).name("v").as_table(), engine=engine)
    literal = sql.removeprefix("SELECT ").removesuffix(' AS "v"')
    if literal == sql:
        raise RuntimeError(f"unexpected literal SQL from Ibis: {sql}")
    return literal


@dataclass(frozen=True)
class RuleSQL:
    """A rule as one SQL query of the matching contact ids (column ``contact_id``, each once),
    with its parameters in order: the cut-offs of its relative windows. On PostgreSQL and
    SQLite it is ready for Django's cursor (``%s``; a ``%`` in a literal doubled), on DuckDB
    for its ``?``."""

    sql: str
    params: list[Any]


@dataclass(frozen=True)
class _Template:
    sql: str
    #: Distance before ``now`` of each placeholder, in the order they appear in ``sql``.
    cutoffs: tuple[timedelta, ...]
    refs: tuple[tuple[str, int, str], ...]
    #: The template is valid from this instant on: a ``since`` in the rule was checked to be
    #: in the past of it, and time only moves forward.
    compiled_at: datetime


_templates: OrderedDict[tuple[int, int | None, str, str], _Template] = OrderedDict()
_templates_lock = threading.Lock()


def _cutoff_param(moment: datetime, engine: str) -> Any:
    """The cut-off as the driver must receive it to compare like the literal Ibis would write:
    SQLite stores naive UTC text."""
    moment = utc_cutoff(moment)
    if engine == "sqlite":
        return moment.replace(tzinfo=None).isoformat(sep=" ")
    return moment


def _template(compiler: _Compiler, sql: str, engine: str) -> _Template:
    if engine != "duckdb":
        sql = sql.replace("%", "%%")
    stand_ins = {_stand_in_sql(engine, k): k for k in range(len(compiler.cutoffs))}
    order: list[timedelta] = []
    found: set[int] = set()
    if stand_ins:
        pattern = re.compile("|".join(re.escape(text) for text in stand_ins))

        def place(match: re.Match[str]) -> str:
            k = stand_ins[match.group(0)]
            found.add(k)
            order.append(compiler.cutoffs[k])
            return _PLACEHOLDER[engine]

        sql = pattern.sub(place, sql)
    if found != set(range(len(compiler.cutoffs))):
        raise RuntimeError("a cut-off of the rule is missing from its compiled SQL")
    return _Template(
        sql=sql, cutoffs=tuple(order), refs=tuple(compiler.refs), compiled_at=compiler.now
    )


def rule_sql(
    *,
    workspace: Workspace,
    rule: Any,
    now: datetime,
    store_id: int | None = None,
    engine: str | None = None,
) -> RuleSQL:
    """The rule compiled to SQL for Django's database (or ``engine``), validated like
    ``compile_rule``. Building and compiling the Ibis expression costs 4-15 ms, longer than many
    a small count takes to run, and the same rule runs again and again (every batch a journey's
    branch step claims, every scheduled refresh, a preview re-run): so the SQL is kept per rule
    as a template whose relative windows are parameters, and only the cut-offs are worked out
    from ``now`` on each call. The tags, stores and staff it names are checked every time."""
    engine = engine or dialect()
    try:
        text = json.dumps(rule, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        text = None
    if text is None or _STAND_IN_DAY in text:
        sql = to_sql(
            compile_rule(workspace=workspace, rule=rule, now=now, store_id=store_id), engine
        )
        return RuleSQL(sql=sql if engine == "duckdb" else sql.replace("%", "%%"), params=[])
    key = (workspace.id, store_id, engine, text)
    with _templates_lock:
        template = _templates.get(key)
        if template is not None:
            _templates.move_to_end(key)
    if template is not None and now >= template.compiled_at:
        _check_refs(workspace, list(template.refs))
    else:
        compiler = _Compiler(workspace=workspace, now=now, parametric=True)
        template = _template(compiler, to_sql(_compiled(compiler, rule, store_id), engine), engine)
        with _templates_lock:
            _templates[key] = template
            while len(_templates) > _TEMPLATES_KEPT:
                _templates.popitem(last=False)
    return RuleSQL(
        sql=template.sql, params=[_cutoff_param(now - d, engine) for d in template.cutoffs]
    )
