from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError

from siyu.audiences import queries, services
from siyu.audiences.models import (
    ContactTag,
    SegmentChange,
    SegmentMember,
    SegmentRefresh,
    SegmentSizeHistory,
)
from siyu.contacts.models import Contact
from siyu.contacts.schemas import ContactIn
from siyu.contacts.services import contacts_upsert
from siyu.errors import ValidationFailed
from tests import factories
from tests.audiences.conftest import NOW, order


def _members(segment) -> set[int]:
    return set(SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True))


def _changes(refresh_id: int) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {"entered": set(), "left": set()}
    for change, cid in SegmentChange.objects.filter(refresh_id=refresh_id).values_list(
        "change", "contact_id"
    ):
        out[change].add(cid)
    return out


@pytest.mark.django_db
def test_refresh_writes_membership_and_records_who_entered_and_left(pool):
    a, b, c, d = (pool.contacts[k] for k in "abcd")
    segment = services.segment_create(
        workspace=pool.ws,
        name="上海客户",
        rule={"field": "contact.city", "op": "eq", "value": "上海"},
    )
    assert segment.status == "new" and _members(segment) == set()

    segment = services.segment_refresh(workspace=pool.ws, segment=segment, now=NOW)
    assert (segment.status, segment.size, segment.refreshed_at) == ("ready", 2, NOW)
    assert _members(segment) == {a.id, c.id}
    first = SegmentRefresh.objects.get(segment=segment)
    assert (first.entered, first.left, first.size, first.status) == (2, 0, 2, "ready")
    assert _changes(first.id) == {"entered": {a.id, c.id}, "left": set()}

    Contact.objects.filter(id=c.id).update(city="杭州")
    Contact.objects.filter(id=b.id).update(city="上海")
    segment = services.segment_refresh(
        workspace=pool.ws, segment=segment, now=NOW + timedelta(hours=1)
    )
    assert _members(segment) == {a.id, b.id} and segment.size == 2
    second = SegmentRefresh.objects.filter(segment=segment).latest("id")
    assert (second.entered, second.left) == (1, 1)
    assert _changes(second.id) == {"entered": {b.id}, "left": {c.id}}
    # a stayed: still one row, added at the first refresh.
    assert SegmentMember.objects.get(segment=segment, contact=a).added_at == NOW

    again = services.segment_refresh(
        workspace=pool.ws, segment=segment, now=NOW + timedelta(hours=2)
    )
    third = SegmentRefresh.objects.filter(segment=segment).latest("id")
    assert (third.entered, third.left, again.size) == (0, 0, 2)
    # Size history keeps one row per local day: 20:00 Shanghai on 1 March for all three.
    assert list(SegmentSizeHistory.objects.filter(segment=segment).values_list("date", "size")) == [
        (NOW.date(), 2)
    ]


@pytest.mark.django_db
def test_a_failed_refresh_keeps_the_previous_membership(pool, monkeypatch):
    segment = services.segment_create(workspace=pool.ws, name="VIP", rule={"tag": pool.vip.id})
    services.segment_refresh(workspace=pool.ws, segment=segment, now=NOW)
    assert _members(segment) == {pool.contacts["c"].id}

    # The database fails half-way, after the leavers were recorded and deleted.
    Contact.objects.filter(id=pool.contacts["c"].id).update(city="x")
    services.untag_contacts(workspace=pool.ws, tag=pool.vip, contact_ids=[pool.contacts["c"].id])
    real_execute = services._execute

    def failing(sql: str, params: list) -> int:
        if sql.startswith(f"INSERT INTO {services._q(SegmentMember)}"):
            raise DatabaseError("disk full")
        return real_execute(sql, params)

    monkeypatch.setattr(services, "_execute", failing)
    segment = services.segment_refresh(
        workspace=pool.ws, segment=segment, now=NOW + timedelta(hours=1)
    )
    assert (segment.status, segment.last_error, segment.size) == (
        "failed",
        "database error: disk full",
        1,
    )
    assert _members(segment) == {pool.contacts["c"].id}
    failed = SegmentRefresh.objects.filter(segment=segment).latest("id")
    assert (failed.status, failed.error) == ("failed", "database error: disk full")
    assert not SegmentChange.objects.filter(refresh=failed).exists()

    # A rule that became invalid (its tag was deleted) fails the same way, naming the path.
    monkeypatch.undo()
    vip_id = pool.vip.id
    services.tag_delete(workspace=pool.ws, tag=pool.vip)
    segment = services.segment_refresh(
        workspace=pool.ws, segment=segment, now=NOW + timedelta(hours=2)
    )
    assert segment.status == "failed"
    assert segment.last_error == f"rule.tag: tag {vip_id} does not exist in this workspace"
    assert _members(segment) == {pool.contacts["c"].id}

    segment.rule = {"field": "contact.city", "op": "eq", "value": "x"}
    segment.save()
    segment = services.segment_refresh(
        workspace=pool.ws, segment=segment, now=NOW + timedelta(hours=3)
    )
    assert (segment.status, segment.last_error, _members(segment)) == (
        "ready",
        "",
        {pool.contacts["c"].id},
    )


@pytest.mark.django_db
def test_saving_a_bad_rule_is_refused_with_its_path_and_nothing_is_saved(pool):
    with pytest.raises(ValidationFailed) as info:
        services.segment_create(
            workspace=pool.ws,
            name="bad",
            rule={"all": [{"tag": pool.vip.id}, {"orders": {"window_days": -1}}]},
        )
    assert (info.value.path, info.value.message) == (
        "rule.all.1.orders.window_days",
        "window_days must be positive",
    )
    assert not queries.segments_list(workspace=pool.ws).exists()


@pytest.mark.django_db
def test_a_tag_of_another_workspace_is_refused(pool, other_ws):
    foreign = services.tag_create(
        workspace=other_ws, group=services.tag_group_create(workspace=other_ws, name="g"), name="t"
    )
    with pytest.raises(ValidationFailed) as info:
        services.segment_create(workspace=pool.ws, name="x", rule={"any": [{"tag": foreign.id}]})
    assert (info.value.path, info.value.message) == (
        "rule.any.0.tag",
        f"tag {foreign.id} does not exist in this workspace",
    )
    with pytest.raises(ValidationFailed) as info:
        services.tag_contacts(workspace=pool.ws, tag=foreign, contact_ids=[pool.contacts["a"].id])
    assert info.value.message == f"tag {foreign.id} belongs to another workspace"
    assert not ContactTag.objects.filter(tag=foreign).exists()
    with pytest.raises(ValidationFailed) as info:
        services.tag_contacts(workspace=other_ws, tag=foreign, contact_ids=[pool.contacts["a"].id])
    assert (info.value.path, info.value.message) == (
        "contact_ids.0",
        f"contact {pool.contacts['a'].id} does not exist in this workspace",
    )
    assert not ContactTag.objects.filter(tag=foreign).exists()


@pytest.mark.django_db
def test_static_segment_keeps_the_members_it_was_created_with(pool):
    segment = services.segment_create(
        workspace=pool.ws, name="快照", kind="static", rule={"tag": pool.vip.id}, now=NOW
    )
    assert (segment.status, _members(segment)) == ("ready", {pool.contacts["c"].id})
    with pytest.raises(ValidationFailed) as info:
        services.segment_refresh(workspace=pool.ws, segment=segment)
    assert info.value.message == "a static segment keeps the members it was created with"


@pytest.mark.django_db
def test_staff_preview_and_members_see_only_their_store(pool):
    rule = {"field": "contact.city", "op": "contains", "value": "上海"}
    full = queries.segment_preview(workspace=pool.ws, rule=rule, now=NOW)
    assert full.count == 3 and [c.name for c in full.sample] == ["A", "C", "D"]

    user = factories.member(pool.ws, role="staff")
    pool.e1.user = user
    pool.e1.save()
    membership = user.memberships.get(workspace=pool.ws)
    mine = queries.segment_preview(workspace=pool.ws, rule=rule, membership=membership, now=NOW)
    assert mine.count == 2 and [c.name for c in mine.sample] == ["A", "D"]

    segment = services.segment_refresh(
        workspace=pool.ws,
        segment=services.segment_create(workspace=pool.ws, name="s", rule=rule),
        now=NOW,
    )
    assert [
        c.name
        for c in queries.segment_members(workspace=pool.ws, segment=segment, membership=membership)
    ] == ["A", "D"]

    storeless = factories.member(pool.ws, role="staff")
    nobody = storeless.memberships.get(workspace=pool.ws)
    assert (
        queries.segment_preview(workspace=pool.ws, rule=rule, membership=nobody, now=NOW).count == 0
    )
    assert not queries.segment_members(
        workspace=pool.ws, segment=segment, membership=nobody
    ).exists()


@pytest.mark.django_db
def test_tag_a_whole_segment_and_untag_it(pool):
    a, c = pool.contacts["a"], pool.contacts["c"]
    segment = services.segment_refresh(
        workspace=pool.ws,
        segment=services.segment_create(
            workspace=pool.ws,
            name="上海",
            rule={"field": "contact.city", "op": "eq", "value": "上海"},
        ),
        now=NOW,
    )
    assert (
        services.tag_contacts(workspace=pool.ws, tag=pool.vip, segment=segment) == 1
    )  # c already had it
    assert dict(ContactTag.objects.filter(tag=pool.vip).values_list("contact_id", "source")) == {
        a.id: "manual",
        c.id: "manual",
    }
    assert services.untag_contacts(workspace=pool.ws, tag=pool.vip, segment=segment) == 2
    assert not ContactTag.objects.filter(tag=pool.vip).exists()


@pytest.mark.django_db
def test_auto_tag_rule_tags_matches_and_leaves_hand_tags_alone(pool):
    a, b, c = pool.contacts["a"], pool.contacts["b"], pool.contacts["c"]
    group = services.tag_group_create(workspace=pool.ws, name="生命周期")
    repeat = services.tag_create(
        workspace=pool.ws,
        group=group,
        name="复购",
        color="#e11d48",
        rule={"orders": {"count": {"gte": 2}}},
    )
    services.tag_contacts(workspace=pool.ws, tag=repeat, contact_ids=[c.id])
    assert services.tag_rule_apply(workspace=pool.ws, tag=repeat, now=NOW) == (2, 0)
    assert dict(ContactTag.objects.filter(tag=repeat).values_list("contact_id", "source")) == {
        a.id: "rule",
        b.id: "rule",
        c.id: "manual",
    }
    assert services.tag_rule_apply(workspace=pool.ws, tag=repeat, now=NOW) == (0, 0)

    order(pool.ws, a, "store", "10.00", NOW - timedelta(days=1))
    services.tag_update(
        workspace=pool.ws,
        tag=repeat,
        name="复购",
        color="#e11d48",
        rule={"orders": {"count": {"gte": 3}}},
    )
    # b no longer matches and loses the tag; c never matched but was tagged by hand and keeps it.
    assert services.tag_rule_apply(workspace=pool.ws, tag=repeat, now=NOW) == (0, 1)
    assert set(ContactTag.objects.filter(tag=repeat).values_list("contact_id", flat=True)) == {
        a.id,
        c.id,
    }


@pytest.mark.django_db
def test_merge_moves_tags_and_memberships_without_duplicates(ws):
    old = factories.contact(ws, identities=[{"kind": "phone", "value": "13800000011"}])
    young = factories.contact(
        ws, identities=[{"kind": "member_no", "value": "M-11"}], first_seen_at=NOW
    )
    group = services.tag_group_create(workspace=ws, name="g")
    both, only_young = (
        services.tag_create(workspace=ws, group=group, name=n) for n in ("both", "young")
    )
    services.tag_contacts(workspace=ws, tag=both, contact_ids=[old.id, young.id])
    services.tag_contacts(workspace=ws, tag=only_young, contact_ids=[young.id])
    segment = services.segment_refresh(
        workspace=ws,
        segment=services.segment_create(
            workspace=ws, name="all", rule={"field": "contact.city", "op": "eq", "value": ""}
        ),
    )
    assert _members(segment) == {old.id, young.id}

    contacts_upsert(
        workspace=ws,
        items=[
            ContactIn(
                identities=[
                    {"kind": "phone", "value": "13800000011"},
                    {"kind": "member_no", "value": "M-11"},
                ]
            )
        ],
    )

    assert not Contact.objects.filter(id=young.id).exists()
    assert set(ContactTag.objects.filter(contact=old).values_list("tag__name", flat=True)) == {
        "both",
        "young",
    }
    assert ContactTag.objects.filter(workspace=ws).count() == 2
    assert _members(segment) == {old.id}


@pytest.mark.django_db
def test_preview_counts_every_match_and_samples_the_first_in_one_statement(
    ws, django_assert_num_queries
):
    made = [
        factories.contact(ws, name=f"客户{i}", city="杭州") for i in range(queries.SAMPLE_SIZE + 5)
    ]
    rule = {"field": "contact.city", "op": "eq", "value": "杭州"}
    # The rule's statement (count and sample together), then the sampled contacts.
    with django_assert_num_queries(2):
        preview = queries.segment_preview(workspace=ws, rule=rule, now=NOW)
        sample = [c.id for c in preview.sample]
    assert preview.count == queries.SAMPLE_SIZE + 5
    assert sample == sorted(c.id for c in made)[: queries.SAMPLE_SIZE]
    nobody = queries.segment_preview(
        workspace=ws, rule={"field": "contact.city", "op": "eq", "value": "拉萨"}, now=NOW
    )
    assert (nobody.count, nobody.sample) == (0, [])
