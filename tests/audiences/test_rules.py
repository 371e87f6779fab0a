"""Each rule type against the hand-made pool (tests/audiences/conftest.py): the expected contact
set is worked out by hand from the data there. The same compiled expression then runs on DuckDB
over Parquet exports of the same tables and must give the same ids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection

from siyu.analytics.tables import duckdb_connect, duckdb_fetch, fetch, parquet_export, to_sql
from siyu.audiences.models import ContactTag
from siyu.audiences.rules import compile_rule, rule_sql
from siyu.commerce.models import Order, OrderItem, Product
from siyu.contacts.models import Consent, Contact, Identity
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from tests.audiences.conftest import NOW, Pool


def field(name: str, op: str, value) -> dict:
    return {"field": name, "op": op, "value": value}


CASES: list[tuple[str, Callable[[Pool], dict], set[str]]] = [
    ("city eq", lambda p: field("contact.city", "eq", "上海"), {"a", "c"}),
    ("city ne", lambda p: field("contact.city", "ne", "上海"), {"b", "d"}),
    ("city in", lambda p: field("contact.city", "in", ["上海", "北京"]), {"a", "b", "c"}),
    ("city not_in", lambda p: field("contact.city", "not_in", ["上海", "北京"]), {"d"}),
    ("city contains quote and percent", lambda p: field("contact.city", "contains", "%'"), {"d"}),
    ("city eq hostile text", lambda p: field("contact.city", "eq", "100%'上海"), {"d"}),
    ("gender", lambda p: field("contact.gender", "eq", "f"), {"a"}),
    ("gender unknown", lambda p: field("contact.gender", "is_set", False), {"c", "d"}),
    (
        "source channel",
        lambda p: field("contact.source_channel", "in", ["douyin", "wecom"]),
        {"a", "b"},
    ),
    (
        "first seen within 7 days (edge)",
        lambda p: field("contact.first_seen_at", "within_days", 7),
        {"c"},
    ),
    (
        "first seen within 10 days",
        lambda p: field("contact.first_seen_at", "within_days", 10),
        {"a", "c", "d"},
    ),
    (
        "first seen older than 7 days",
        lambda p: field("contact.first_seen_at", "older_than_days", 7),
        {"a", "b", "d"},
    ),
    (
        "first seen since local time",
        lambda p: field("contact.first_seen_at", "gte", "2026-02-22T20:00:00+08:00"),
        {"c"},
    ),
    (
        "first seen before local time",
        lambda p: field("contact.first_seen_at", "lt", "2026-02-22T20:00:00+08:00"),
        {"a", "b", "d"},
    ),
    ("birthday month", lambda p: field("contact.birthday_month", "eq", 5), {"a"}),
    ("birthday month from", lambda p: field("contact.birthday_month", "gte", 6), {"b"}),
    ("birthday unknown", lambda p: field("contact.birthday_month", "is_set", False), {"c", "d"}),
    ("store", lambda p: field("contact.store", "eq", p.s1.id), {"a", "d"}),
    ("store ne includes no store", lambda p: field("contact.store", "ne", p.s1.id), {"b", "c"}),
    ("no store", lambda p: field("contact.store", "is_set", False), {"c"}),
    ("owner staff", lambda p: field("contact.owner_staff", "eq", p.e1.id), {"a"}),
    (
        "first touch campaign",
        lambda p: field("contact.first_touch_campaign", "eq", "spring"),
        {"a"},
    ),
    ("has wecom", lambda p: {"has_identity": "wecom_external_userid"}, {"a"}),
    ("has member no", lambda p: {"has_identity": "member_no"}, {"c"}),
    ("sms granted", lambda p: {"consent": {"channel": "sms", "status": "granted"}}, {"a"}),
    ("sms opted out", lambda p: {"consent": {"channel": "sms", "status": "opted_out"}}, {"b"}),
    (
        "sms unknown includes never asked",
        lambda p: {"consent": {"channel": "sms", "status": "unknown"}},
        {"c", "d"},
    ),
    ("tag", lambda p: {"tag": p.vip.id}, {"c"}),
    # d's only order is fully refunded, so d has no orders; b's partly refunded order counts.
    ("orders at least 2", lambda p: {"orders": {"count": {"gte": 2}}}, {"a", "b"}),
    ("orders in 30 days (edge)", lambda p: {"orders": {"window_days": 30}}, {"a"}),
    ("never ordered", lambda p: {"orders": {"count": {"eq": 0}}}, {"c", "d"}),
    ("net spend at least 130", lambda p: {"orders": {"sum": {"gte": "130.00"}}}, {"a"}),
    (
        "net spend under 150 includes non-buyers",
        lambda p: {"orders": {"sum": {"lt": 150}}},
        {"b", "c", "d"},
    ),
    ("average order at least 60", lambda p: {"orders": {"avg": {"gte": 60}}}, {"a"}),
    ("mini program buyers", lambda p: {"orders": {"channel": "mini_program"}}, {"a", "b"}),
    (
        "mini program in 30 days",
        lambda p: {"orders": {"channel": ["mini_program"], "window_days": 30}},
        {"a"},
    ),
    ("bought sku", lambda p: {"orders": {"sku": "TEA1"}}, {"a"}),
    ("bought category", lambda p: {"orders": {"category": ["烘焙"]}}, {"a", "b"}),
    ("bought in store", lambda p: {"orders": {"store": p.s2.id}}, {"b"}),
    ("last order within 7 days", lambda p: {"orders": {"last_at": {"within_days": 7}}}, {"a"}),
    (
        "lapsed over 30 days (edge)",
        lambda p: {"orders": {"last_at": {"older_than_days": 30}}},
        {"b"},
    ),
    (
        "first order this year",
        lambda p: {"orders": {"first_at": {"gte": "2026-01-01T00:00:00+08:00"}}},
        {"a"},
    ),
    (
        "orders since until",
        lambda p: {
            "orders": {"since": "2025-06-01T00:00:00+08:00", "until": "2026-02-01T00:00:00+00:00"}
        },
        {"a", "b"},
    ),
    ("shared", lambda p: {"event": {"type": "share"}}, {"a", "b", "d"}),
    (
        "shared 3 times in 30 days",
        lambda p: {"event": {"type": "share", "min_count": 3, "window_days": 30}},
        {"a"},
    ),
    ("never shared", lambda p: {"event": {"type": "share", "max_count": 0}}, {"c"}),
    (
        "did not share in 30 days",
        lambda p: {"event": {"type": "share", "max_count": 0, "window_days": 30}},
        {"c", "d"},
    ),
    (
        "shared 2 to 5 times",
        lambda p: {"event": {"type": "share", "min_count": 2, "max_count": 5}},
        {"a", "d"},
    ),
    (
        "shared from home",
        lambda p: {"event": {"type": "share", "properties": {"page": "home"}}},
        {"a"},
    ),
    (
        "event number and bool properties",
        lambda p: {"event": {"type": "share", "properties": {"n": 2, "vip": True}}},
        {"a"},
    ),
    ("all", lambda p: {"all": [field("contact.city", "eq", "上海"), {"orders": {}}]}, {"a"}),
    (
        "any",
        lambda p: {
            "any": [{"tag": p.vip.id}, {"consent": {"channel": "sms", "status": "opted_out"}}]
        },
        {"b", "c"},
    ),
    ("not", lambda p: {"not": field("contact.city", "eq", "上海")}, {"b", "d"}),
    (
        "five levels",
        lambda p: {
            "all": [
                {
                    "any": [
                        {"not": {"all": [{"any": [{"tag": p.vip.id}]}]}},
                        {"orders": {"count": {"gte": 2}}},
                    ]
                }
            ]
        },
        {"a", "b", "d"},
    ),
]


def _ids(pool: Pool, rule: dict) -> set[int]:
    return {row[0] for row in fetch(compile_rule(workspace=pool.ws, rule=rule, now=NOW))}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule_of", "expected"), [(r, e) for _, r, e in CASES], ids=[n for n, _, _ in CASES]
)
def test_rule_matches_the_contacts_worked_out_by_hand(pool, rule_of, expected):
    assert pool.names(_ids(pool, rule_of(pool))) == expected


@pytest.mark.django_db
def test_the_same_expressions_give_the_same_ids_on_duckdb_over_parquet(pool, tmp_path):
    written = parquet_export(
        models_=[Contact, Identity, Consent, ContactTag, Order, OrderItem, Product, Event],
        directory=tmp_path,
    )
    assert written["commerce_order"] == 6 and written["contacts_contact"] == 5
    for name, rule_of, expected in CASES:
        expr = compile_rule(workspace=pool.ws, rule=rule_of(pool), now=NOW)
        on_duckdb = {row[0] for row in duckdb_fetch(expr, tmp_path)}
        assert on_duckdb == {row[0] for row in fetch(expr)}, name
        assert pool.names(on_duckdb) == expected, name


def _ids_from_sql(pool: Pool, rule: dict, now=NOW, **kwargs) -> set[int]:
    matches = rule_sql(workspace=pool.ws, rule=rule, now=now, **kwargs)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT contact_id FROM ({matches.sql}) r", matches.params)
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_the_kept_sql_of_a_rule_matches_like_its_expression(pool, tmp_path):
    # Each rule twice: compiled into a template, then served from it. The cases put contacts
    # exactly on a window's edge and one microsecond before it.
    parquet_export(
        models_=[Contact, Identity, Consent, ContactTag, Order, OrderItem, Product, Event],
        directory=tmp_path,
    )
    duck = duckdb_connect(tmp_path)
    for name, rule_of, expected in CASES:
        for _ in range(2):
            assert pool.names(_ids_from_sql(pool, rule_of(pool))) == expected, name
            on_duckdb = rule_sql(workspace=pool.ws, rule=rule_of(pool), now=NOW, engine="duckdb")
            rows = duck.raw_sql(on_duckdb.sql, parameters=on_duckdb.params).fetchall()
            assert pool.names(row[0] for row in rows) == expected, name


@pytest.mark.django_db
def test_a_kept_rule_works_out_its_windows_from_each_call(pool):
    rule = {
        "any": [
            field("contact.first_seen_at", "within_days", 7),
            {"orders": {"count": {"gte": 1}, "window_days": 30}},
        ]
    }
    first = rule_sql(workspace=pool.ws, rule=rule, now=NOW)
    later = NOW + timedelta(days=3, microseconds=1)
    again = rule_sql(workspace=pool.ws, rule=rule, now=later)
    assert again.sql is first.sql  # compiled once
    assert again.params != first.params
    fresh = {row[0] for row in fetch(compile_rule(workspace=pool.ws, rule=rule, now=later))}
    assert _ids_from_sql(pool, rule, now=later) == fresh
    assert _ids_from_sql(pool, rule) != fresh  # the windows did move


@pytest.mark.django_db
def test_a_kept_rule_still_checks_what_it_names(pool):
    from siyu.audiences import services

    group = services.tag_group_create(workspace=pool.ws, name="临时")
    tag = services.tag_create(workspace=pool.ws, group=group, name="快闪")
    tag_id = tag.id
    rule = {"all": [{"tag": tag_id}]}
    assert _ids_from_sql(pool, rule) == set()
    tag.delete()
    with pytest.raises(ValidationFailed) as info:
        _ids_from_sql(pool, rule)
    assert (info.value.path, info.value.message) == (
        "all.0.tag",
        f"tag {tag_id} does not exist in this workspace",
    )
    # A window that starts after an earlier "now" is refused for that call, as when compiled.
    since = {"orders": {"count": {"gte": 1}, "since": "2026-03-01T08:00:00+08:00"}}
    _ids_from_sql(pool, since)
    with pytest.raises(ValidationFailed, match="the window starts in the future"):
        _ids_from_sql(pool, since, now=NOW - timedelta(days=1))


@pytest.mark.django_db
def test_a_rule_naming_the_stand_in_day_is_compiled_plainly(pool):
    rule = field("contact.city", "eq", "1900-01-01 00:00:00")
    matches = rule_sql(workspace=pool.ws, rule=rule, now=NOW)
    assert matches.params == [] and "1900-01-01 00:00:00" in matches.sql
    assert _ids_from_sql(pool, rule) == set()


@pytest.mark.django_db
def test_on_duckdb_did_not_do_reads_only_the_contacts_ids_it_needs(pool):
    # DuckDB carries every column of a nested "SELECT *" through the anti-join of a
    # correlated NOT EXISTS; the filter is merged into the projection of the ids instead.
    expr = compile_rule(
        workspace=pool.ws, rule={"event": {"type": "share", "max_count": 0}}, now=NOW
    )
    sql = to_sql(expr, engine="duckdb")
    assert "SELECT *" not in sql and "NOT (EXISTS(" in sql


@pytest.mark.django_db
def test_staff_store_narrows_the_expression(pool):
    expr = compile_rule(
        workspace=pool.ws,
        rule=field("contact.city", "contains", "上海"),
        now=NOW,
        store_id=pool.s1.id,
    )
    assert pool.names(row[0] for row in fetch(expr)) == {"a", "d"}


def _error(pool: Pool, rule) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as info:
        compile_rule(workspace=pool.ws, rule=rule, now=NOW)
    assert info.value.code == "invalid_rule" and info.value.http_status == 422
    return info.value.path, info.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        (
            {"all": [field("contact.citty", "eq", "x")]},
            "all.0.field",
            "unknown field 'contact.citty'",
        ),
        (
            {"all": [field("contact.city", "gt", "x")]},
            "all.0.op",
            "operator 'gt' does not apply to text field contact.city",
        ),
        (
            field("contact.first_seen_at", "eq", "x"),
            "op",
            "operator 'eq' does not apply to date-time field contact.first_seen_at",
        ),
        (field("contact.city", "like", "x"), "op", "unknown operator 'like'"),
        (field("contact.gender", "eq", "x"), "value", "'x' is not one of: m, f"),
        (
            field("contact.birthday_month", "eq", 13),
            "value",
            "a month is a whole number from 1 to 12",
        ),
        (
            {
                "any": [
                    {"tag": 1},
                    {"all": [{"x": 1}, {"orders": {"count": {"gte": 2}, "window_days": -3}}]},
                ]
            },
            "any.1.all.0",
            "unknown condition (x): expected all, any, not, field, has_identity, consent, tag, orders, event, score, rfm_class, lifecycle or intent",
        ),
        (
            {
                "all": [
                    {"tag": 1},
                    {"all": [{"orders": {"count": {"gte": 2}}}, {"orders": {"window_days": 0}}]},
                ]
            },
            "all.1.all.1.orders.window_days",
            "window_days must be positive",
        ),
        (
            {"all": [{"tag": 1}, {"tag": 1}, {"orders": {"count": {"gte": -2}}}]},
            "all.2.orders.count.gte",
            "expected a whole number of at least 0",
        ),
        (
            {"all": [{"orders": {"count": {"more": 2}}}]},
            "all.0.orders.count.more",
            "unknown operator 'more'",
        ),
        (
            {"orders": {"since": "2026-03-02T00:00:00+08:00"}},
            "orders.since",
            "the window starts in the future",
        ),
        (
            {"orders": {"since": "2026-01-02T00:00:00"}},
            "orders.since",
            "timestamp needs a time zone offset, e.g. 2026-05-01T00:00:00+08:00",
        ),
        (
            {"orders": {"window_days": 30, "since": "2026-01-02T00:00:00+08:00"}},
            "orders",
            "give window_days or since, not both",
        ),
        (
            {"orders": {"colour": "red"}},
            "orders.colour",
            "unknown key 'colour' in orders; expected one of: avg, category, channel, count, first_at, last_at, since, sku, store, sum, until, window_days",
        ),
        (
            {"event": {"type": "share", "min_count": 4, "max_count": 2}},
            "event.min_count",
            "min_count is larger than max_count",
        ),
        (
            {"event": {"type": "share", "properties": {"a.b": "x"}}},
            "event.properties.a.b",
            "property name 'a.b' must be letters, digits or _ (at most 64)",
        ),
        ({"event": {"type": "shout"}}, "event.type", None),
        (
            {"not": {"not": {"not": {"not": {"not": {"not": {"tag": 1}}}}}}},
            "not.not.not.not.not.not",
            "nesting deeper than 5 levels",
        ),
        ({"all": []}, "all", "'all' takes a non-empty list of rules"),
        ({"has_identity": "qq"}, "has_identity", None),
        (
            {"consent": {"channel": "sms"}},
            "consent",
            'consent takes {"channel": ..., "status": ...}',
        ),
        ([], "", "a rule is a non-empty JSON object"),
    ],
)
def test_bad_rules_are_refused_naming_the_path(pool, rule, path, message):
    got_path, got_message = _error(pool, rule)
    assert got_path == (path or None)
    if message is not None:
        assert got_message == message


@pytest.mark.django_db
def test_unknown_and_foreign_references_are_refused(pool, other_ws):
    from siyu.audiences import services

    foreign = services.tag_create(
        workspace=other_ws, group=services.tag_group_create(workspace=other_ws, name="g"), name="t"
    )
    assert _error(pool, {"all": [{"tag": pool.vip.id}, {"any": [{"tag": foreign.id}]}]}) == (
        "all.1.any.0.tag",
        f"tag {foreign.id} does not exist in this workspace",
    )
    assert _error(pool, {"orders": {"store": [pool.s1.id, 99999]}}) == (
        "orders.store.1",
        "store 99999 does not exist in this workspace",
    )
    assert _error(pool, field("contact.owner_staff", "in", [99998])) == (
        "value.0",
        "staff 99998 does not exist in this workspace",
    )
