"""The audience console pages over the hand-made pool of conftest.py: what an operator, an analyst
and a staff member see and may do, with exact numbers and messages."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from siyu.audiences import services
from siyu.audiences.models import ContactTag, Segment, SegmentMember, Tag, TagGroup
from siyu.commerce.models import Staff
from siyu.tenancy.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db

CITY_SH = {"all": [{"field": "contact.city", "op": "eq", "value": "上海"}]}


def _login(client, ws, role="owner"):
    user = factories.member(ws, role=role)
    client.force_login(user)
    return user


def _preview(client, rule):
    text = rule if isinstance(rule, str) else json.dumps(rule)
    return client.post(reverse("console:audiences:segment_preview"), {"rule": text})


def _rows(html: str, testid: str) -> list[list[str]]:
    """The cells' text of a table, row by row, tags stripped."""
    table = re.search(rf'<table[^>]*data-testid="{testid}".*?</table>', html, re.S).group(0)
    body = table.split("<tbody>")[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def _figure(html: str, element_id: str) -> dict:
    return json.loads(
        re.search(rf'<script id="{element_id}"[^>]*>(.*?)</script>', html, re.S).group(1)
    )


def _save(client, pool, name="上海客户", rule=CITY_SH, **extra):
    data = {"name": name, "kind": "dynamic", "refresh_every": "daily", "rule": json.dumps(rule)}
    return client.post(reverse("console:audiences:segment_new"), {**data, **extra})


# --- preview ------------------------------------------------------------------------------------


def test_preview_shows_the_count_and_a_sample_with_masked_phones(client, pool):
    _login(client, pool.ws)

    response = _preview(client, CITY_SH)

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-testid="preview-count">2<', html)
    assert _rows(html, "preview-sample") == [
        ["A", "139****0001", pool.s1.name],
        ["C", pool.contacts["c"].phone_masked or "—", "—"],
    ]
    assert "+8613900000001" not in html


def test_preview_of_an_invalid_rule_names_the_offending_path(client, pool):
    _login(client, pool.ws)
    rule = {
        "all": [
            {"field": "contact.city", "op": "eq", "value": "上海"},
            {"tag": pool.vip.id},
            {"orders": {"count": {"gte": -1}}},
        ]
    }

    html = _preview(client, rule).content.decode()

    assert 'data-error-path="all.2.orders.count.gte"' in html
    assert "all.2.orders.count.gte: expected a whole number of at least 0" in html


def test_preview_of_text_that_is_not_json_says_so(client, pool):
    _login(client, pool.ws)

    html = _preview(client, '{"all": [').content.decode()

    assert "规则不是有效的 JSON：Expecting value" in html


def test_preview_without_conditions_asks_for_one(client, pool):
    _login(client, pool.ws)

    html = _preview(client, "").content.decode()

    assert "添加条件后，这里会显示匹配的人数和样本。" in html


def test_staff_preview_counts_only_their_store(client, pool):
    user = _login(client, pool.ws, role="staff")
    Staff.objects.filter(id=pool.e1.id).update(user=user)

    html = _preview(client, CITY_SH).content.decode()

    # A (store S1) matches; C lives in Shanghai too but belongs to no store.
    assert re.search(r'data-testid="preview-count">1<', html)
    assert _rows(html, "preview-sample") == [["A", "139****0001", pool.s1.name]]
    assert "仅含你所在门店的客户。" in html


def test_analyst_can_preview_but_not_save(client, pool):
    _login(client, pool.ws, role="analyst")

    assert re.search(r'data-testid="preview-count">2<', _preview(client, CITY_SH).content.decode())
    page = client.get(reverse("console:audiences:segment_new")).content.decode()
    response = _save(client, pool)

    assert "你的角色可以预览，不能保存人群。" in page
    assert response.status_code == 403
    assert not Segment.objects.filter(workspace=pool.ws).exists()


# --- saving, refreshing, history ----------------------------------------------------------------


def test_save_lands_on_the_segment_page_with_size_chart_and_members(client, pool):
    _login(client, pool.ws, role="operator")

    response = _save(client, pool)

    segment = Segment.objects.get(workspace=pool.ws, name="上海客户")
    assert response.status_code == 302
    assert response["Location"] == reverse("console:audiences:segment", args=[segment.id])
    assert (segment.size, segment.refresh_every, segment.status) == (2, "daily", "ready")
    assert segment.next_refresh_at == segment.refreshed_at + timedelta(days=1)
    html = client.get(response["Location"]).content.decode()
    assert "人群「上海客户」已保存。" in html
    figure = _figure(html, "figure-segment-size")
    assert figure["data"][0]["y"] == [2]
    assert [row[0] for row in _rows(html, "members")] == ["A", "C"]
    assert _rows(html, "refreshes")[0][1:] == ["已就绪", "+2", "−0", "2"]


def test_saving_a_bad_rule_shows_the_path_and_keeps_what_was_typed(client, pool):
    _login(client, pool.ws)
    rule = {"all": [{"field": "contact.city", "op": "gt", "value": "上海"}]}

    response = _save(client, pool, name="坏规则", rule=rule)

    html = response.content.decode()
    assert response.status_code == 422
    assert "all.0.op: operator &#x27;gt&#x27; does not apply to text field contact.city" in html
    assert 'data-error-path="all.0.op"' in html
    assert 'value="坏规则"' in html
    assert not Segment.objects.filter(workspace=pool.ws).exists()


def test_saving_a_duplicate_name_is_refused_on_the_name_field(client, pool):
    _login(client, pool.ws)
    _save(client, pool)

    response = _save(client, pool)

    assert response.status_code == 422
    assert "a segment named &#x27;上海客户&#x27; already exists" in response.content.decode()
    assert Segment.objects.filter(workspace=pool.ws).count() == 1


def test_refresh_shows_who_entered_and_left_and_the_size_per_day(client, pool):
    _login(client, pool.ws)
    a, c = pool.contacts["a"], pool.contacts["c"]
    two_days_ago = timezone.now() - timedelta(days=2)
    segment = services.segment_save(
        workspace=pool.ws, name="VIP", rule={"tag": pool.vip.id}, now=two_days_ago
    )
    services.tag_contacts(workspace=pool.ws, tag=pool.vip, contact_ids=[a.id])
    services.untag_contacts(workspace=pool.ws, tag=pool.vip, contact_ids=[c.id])
    services.segment_refresh(
        workspace=pool.ws, segment=segment, now=two_days_ago + timedelta(days=1)
    )

    response = client.post(
        reverse("console:audiences:segment_refresh", args=[segment.id]), follow=True
    )

    html = response.content.decode()
    assert "已刷新，当前 1 人。" in html
    figure = _figure(html, "figure-segment-size")
    assert figure["data"][0]["y"] == [1, 1, 1]
    assert len(set(figure["data"][0]["x"])) == 3
    rows = _rows(html, "refreshes")
    # Newest first: the button's refresh changed nothing; the one before swapped C for A.
    assert [r[2:4] for r in rows if len(r) == 5] == [["+0", "−0"], ["+1", "−1"], ["+1", "−0"]]
    assert f'<a href="/contacts/{a.id}/">A</a>' in html
    assert "进入：" in html and "离开：" in html
    assert f'<a href="/contacts/{c.id}/">C</a>' in html


def test_a_failed_refresh_says_why_and_keeps_the_members(client, pool):
    _login(client, pool.ws)
    _save(client, pool, name="VIP", rule={"tag": pool.vip.id})
    segment = Segment.objects.get(workspace=pool.ws, name="VIP")
    tag_id = pool.vip.id
    services.tag_delete(workspace=pool.ws, tag=pool.vip)

    html = client.post(
        reverse("console:audiences:segment_refresh", args=[segment.id]), follow=True
    ).content.decode()

    message = f"rule.tag: tag {tag_id} does not exist in this workspace"
    assert f"刷新失败：{message}" in html
    assert SegmentMember.objects.filter(segment=segment).count() == 1
    listing = client.get(reverse("console:audiences:segments")).content.decode()
    assert "计算失败" in listing and message in listing


def test_segments_list_shows_kind_size_status_and_schedule(client, pool):
    _login(client, pool.ws)
    _save(client, pool)
    _save(client, pool, name="静态上海", kind="static", refresh_every="manual")

    html = client.get(reverse("console:audiences:segments")).content.decode()

    assert "新建人群" in html
    body = html.split("<tbody>")[1]
    cells = [
        [
            " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]
    assert [c[:5] for c in cells] == [
        ["上海客户", "动态", "2", cells[0][3], "已就绪"],
        ["静态上海", "静态", "2", cells[1][3], "已就绪"],
    ]
    assert cells[0][5].startswith("每天 下次 ")
    assert cells[1][5] == "不刷新"


def test_editing_a_segment_changes_its_rule_and_refreshes_it(client, pool):
    _login(client, pool.ws)
    _save(client, pool)
    segment = Segment.objects.get(workspace=pool.ws, name="上海客户")
    page = client.get(reverse("console:audiences:segment_edit", args=[segment.id])).content.decode()
    assert 'value="上海客户"' in page
    assert "contact.city" in page

    client.post(
        reverse("console:audiences:segment_edit", args=[segment.id]),
        {
            "name": "上海客户",
            "kind": "dynamic",
            "refresh_every": "hourly",
            "rule": json.dumps({"tag": pool.vip.id}),
        },
    )

    segment.refresh_from_db()
    assert (segment.rule, segment.size, segment.refresh_every) == (
        {"tag": pool.vip.id},
        1,
        "hourly",
    )
    assert segment.next_refresh_at == segment.refreshed_at + timedelta(hours=1)


def test_members_page_through_htmx_returns_only_the_table(client, pool):
    _login(client, pool.ws)
    for i in range(30):
        factories.contact(pool.ws, name=f"沪{i:02d}", city="上海")
    _save(client, pool)
    segment = Segment.objects.get(workspace=pool.ws, name="上海客户")

    response = client.get(
        reverse("console:audiences:segment", args=[segment.id]) + "?page=2", HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert "<html" not in html
    assert "第 2 / 2 页" in html
    assert len(_rows(html, "members")) == 7


# --- export -------------------------------------------------------------------------------------


def _export(client, segment):
    response = client.post(reverse("console:audiences:segment_export", args=[segment.id]))
    return response, b"".join(response.streaming_content).decode(
        "utf-8"
    ) if response.status_code == 200 else ""


def test_owner_export_streams_full_phones_and_is_audited(client, pool):
    user = _login(client, pool.ws)
    _save(client, pool)
    segment = Segment.objects.get(workspace=pool.ws, name="上海客户")
    c = pool.contacts["c"]

    response, text = _export(client, segment)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="segment-{segment.id}-'
    )
    assert text.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(text.lstrip("\ufeff")))) == [
        ["contact_id", "name", "phone", "store", "source_channel", "first_seen_at"],
        [
            str(pool.contacts["a"].id),
            "A",
            "+8613900000001",
            pool.s1.name,
            "抖音",
            "2026-02-19T20:00:00+08:00",
        ],
        [str(c.id), "C", "", "", "其他", "2026-02-22T20:00:00+08:00"],
    ]
    log = AuditLog.objects.get(workspace=pool.ws, action="segment.export")
    assert (log.actor_user_id, log.target_id) == (user.id, str(segment.id))
    assert log.data == {"segment_id": segment.id, "rows": 2, "full_phone": True}


@pytest.mark.parametrize("role", ["operator", "analyst"])
def test_operator_and_analyst_exports_carry_masked_phones(client, pool, role):
    owner = factories.member(pool.ws, role="owner")
    segment = services.segment_save(workspace=pool.ws, name="上海客户", rule=CITY_SH, actor=owner)
    _login(client, pool.ws, role=role)

    _response, text = _export(client, segment)

    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[1][2] == "139****0001"
    assert "+8613900000001" not in text
    log = AuditLog.objects.get(workspace=pool.ws, action="segment.export")
    assert log.data == {"segment_id": segment.id, "rows": 2, "full_phone": False}


def test_staff_cannot_export(client, pool):
    segment = services.segment_save(workspace=pool.ws, name="上海客户", rule=CITY_SH)
    _login(client, pool.ws, role="staff")

    response, _text = _export(client, segment)

    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="segment.export").exists()


# --- permissions and other workspaces -----------------------------------------------------------


def test_another_workspaces_segment_is_not_found_and_untouched(client, pool, other_ws):
    theirs = services.segment_save(workspace=pool.ws, name="上海客户", rule=CITY_SH)
    _login(client, other_ws)
    audits = AuditLog.objects.count()
    refreshed_at = theirs.refreshed_at

    for name, method in [
        ("segment", "get"),
        ("segment_edit", "get"),
        ("segment_edit", "post"),
        ("segment_refresh", "post"),
        ("segment_export", "post"),
        ("segment_tag", "post"),
        ("segment_delete", "post"),
    ]:
        response = getattr(client, method)(reverse(f"console:audiences:{name}", args=[theirs.id]))
        assert response.status_code == 404, name

    theirs.refresh_from_db()
    assert theirs.refreshed_at == refreshed_at
    assert AuditLog.objects.count() == audits
    assert SegmentMember.objects.filter(segment=theirs).count() == 2


def test_analyst_cannot_refresh_tag_or_delete(client, pool):
    segment = services.segment_save(workspace=pool.ws, name="上海客户", rule=CITY_SH)
    _login(client, pool.ws, role="analyst")

    for name in ("segment_refresh", "segment_tag", "segment_delete"):
        response = client.post(
            reverse(f"console:audiences:{name}", args=[segment.id]), {"tag_id": pool.vip.id}
        )
        assert response.status_code == 403, name

    assert Segment.objects.filter(id=segment.id).exists()
    assert ContactTag.objects.filter(tag=pool.vip).count() == 1


def test_tag_every_member_of_a_segment(client, pool):
    _login(client, pool.ws, role="operator")
    _save(client, pool)
    segment = Segment.objects.get(workspace=pool.ws, name="上海客户")

    html = client.post(
        reverse("console:audiences:segment_tag", args=[segment.id]),
        {"tag_id": pool.vip.id},
        follow=True,
    ).content.decode()

    # C already had the tag; A is new.
    assert "已为 1 位成员新打上标签「VIP」。" in html
    assert set(ContactTag.objects.filter(tag=pool.vip).values_list("contact_id", flat=True)) == {
        pool.contacts["a"].id,
        pool.contacts["c"].id,
    }


# --- tags ---------------------------------------------------------------------------------------


def _upload(client, tag, text, name="list.csv"):
    return client.post(
        reverse("console:audiences:tag_upload"),
        {"tag_id": tag.id, "file": SimpleUploadedFile(name, text.encode("utf-8"), "text/csv")},
    )


def test_tag_upload_tags_known_phones_and_reports_unknown_lines(client, pool):
    _login(client, pool.ws)

    response = _upload(client, pool.vip, "phone\n13900000001\n13900000000\nabc\n\n")

    html = response.content.decode()
    assert "已为 1 位客户新打上标签「VIP」，2 行未能识别。" in html
    assert re.findall(r"<li>(.*?)</li>", html.split('class="problems"')[1].split("</ul>")[0]) == [
        "第 3 行：未知手机号 139****0000",
        "第 4 行：abc 不是有效的手机号",
    ]
    assert ContactTag.objects.filter(
        tag=pool.vip, contact=pool.contacts["a"], source="import"
    ).exists()


def test_tag_upload_report_in_english(client, pool):
    _login(client, pool.ws)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    html = _upload(client, pool.vip, "phone\n13900000000\n").content.decode()

    assert "line 2: unknown phone 139****0000" in html


def test_tag_upload_by_member_number_and_contact_id(client, pool):
    _login(client, pool.ws)
    a, b = pool.contacts["a"], pool.contacts["b"]

    by_member = _upload(client, pool.vip, "member_no\nM-C\nM-404\n").content.decode()
    by_id = _upload(client, pool.vip, f"contact_id\n{a.id}\n{b.id}\n999999\nx1\n").content.decode()

    assert "第 3 行：未知会员号 M-404" in by_member
    assert "已为 0 位客户新打上标签「VIP」，1 行未能识别。" in by_member
    assert "已为 2 位客户新打上标签「VIP」，2 行未能识别。" in by_id
    assert "第 4 行：未知客户 ID 999999" in by_id
    assert "第 5 行：x1 不是客户 ID" in by_id


def test_tag_upload_without_a_known_header_is_refused(client, pool):
    _login(client, pool.ws)

    response = _upload(client, pool.vip, "mobile\n13900000001\n")

    assert response.status_code == 422
    assert "第一行须为列名：phone、member_no 或 contact_id。" in response.content.decode()
    assert ContactTag.objects.filter(tag=pool.vip).count() == 1


def test_tags_page_lists_groups_tags_and_counts(client, pool):
    _login(client, pool.ws, role="analyst")
    services.tag_group_create(workspace=pool.ws, name="兴趣")

    html = client.get(reverse("console:audiences:tags")).content.decode()

    assert re.findall(r"<h2>(\S+) <span", html) == ["价值", "兴趣"]
    assert re.findall(r'data-testid="tag-count">(\d+)<', html) == ["1"]
    assert "这个组还没有标签。" in html
    assert "新建标签组" not in html  # an analyst reads only


def test_create_rename_and_delete_tags_and_groups(client, pool):
    user = _login(client, pool.ws, role="operator")
    url = "console:audiences:"

    client.post(reverse(url + "tag_group_create"), {"name": "兴趣"})
    group = TagGroup.objects.get(workspace=pool.ws, name="兴趣")
    html = client.post(
        reverse(url + "tag_create", args=[group.id]),
        {"name": "茶饮", "color": "#17a589"},
        follow=True,
    ).content.decode()
    assert "标签「茶饮」已创建。" in html
    tag = Tag.objects.get(group=group, name="茶饮")

    html = client.post(
        reverse(url + "tag_create", args=[group.id]),
        {"name": "茶饮", "color": "#17a589"},
        follow=True,
    ).content.decode()
    assert "tag &#x27;茶饮&#x27; already exists in group &#x27;兴趣&#x27;" in html

    client.post(reverse(url + "tag_rename", args=[tag.id]), {"name": "奶茶", "color": "#17a589"})
    client.post(reverse(url + "tag_group_rename", args=[group.id]), {"name": "口味"})
    tag.refresh_from_db()
    group.refresh_from_db()
    assert (tag.name, group.name) == ("奶茶", "口味")

    html = client.post(
        reverse(url + "tag_delete", args=[pool.vip.id]), follow=True
    ).content.decode()
    assert "标签「VIP」已删除。" in html
    assert not ContactTag.objects.filter(workspace=pool.ws).exists()
    client.post(reverse(url + "tag_group_delete", args=[group.id]))
    assert not Tag.objects.filter(id=tag.id).exists()
    assert list(
        AuditLog.objects.filter(workspace=pool.ws, actor_user=user)
        .values_list("action", flat=True)
        .order_by("id")
    ) == ["tag.delete", "tag.delete", "tag_group.delete"]


def test_analyst_cannot_change_tags(client, pool):
    _login(client, pool.ws, role="analyst")

    responses = [
        client.post(reverse("console:audiences:tag_group_create"), {"name": "兴趣"}),
        client.post(reverse("console:audiences:tag_delete", args=[pool.vip.id])),
        _upload(client, pool.vip, "phone\n13900000001\n"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert TagGroup.objects.filter(workspace=pool.ws).count() == 1
    assert ContactTag.objects.filter(tag=pool.vip).count() == 1


def test_another_workspaces_tag_is_not_found(client, pool, other_ws):
    _login(client, other_ws)

    response = client.post(reverse("console:audiences:tag_delete", args=[pool.vip.id]))

    assert response.status_code == 404
    assert Tag.objects.filter(id=pool.vip.id).exists()


# --- a contact's tags ---------------------------------------------------------------------------


def test_contact_page_loads_its_tags_panel(client, pool):
    _login(client, pool.ws)
    c = pool.contacts["c"]

    page = client.get(reverse("console:contact", args=[c.id])).content.decode()
    panel = client.get(reverse("console:audiences:contact_tags", args=[c.id])).content.decode()

    assert f'hx-get="/audiences/contacts/{c.id}/tags/"' in page
    assert re.findall(r'class="tag-chip"[^>]*>([^<]+)<', panel) == ["VIP"]


def test_add_and_remove_a_tag_on_the_contact_page(client, pool):
    _login(client, pool.ws, role="operator")
    a = pool.contacts["a"]

    added = client.post(
        reverse("console:audiences:contact_tag_add", args=[a.id]), {"tag_id": pool.vip.id}
    ).content.decode()
    assert re.findall(r'class="tag-chip"[^>]*>([^<]+)<', added) == ["VIP"]
    assert ContactTag.objects.filter(contact=a, tag=pool.vip, source="manual").exists()

    removed = client.post(
        reverse("console:audiences:contact_tag_remove", args=[a.id, pool.vip.id])
    ).content.decode()
    assert "还没有标签。" in removed
    assert not ContactTag.objects.filter(contact=a, tag=pool.vip).exists()


def test_analyst_sees_tags_without_add_or_remove(client, pool):
    _login(client, pool.ws, role="analyst")
    c = pool.contacts["c"]

    panel = client.get(reverse("console:audiences:contact_tags", args=[c.id])).content.decode()
    response = client.post(
        reverse("console:audiences:contact_tag_remove", args=[c.id, pool.vip.id])
    )

    assert "VIP" in panel and "移除标签" not in panel and "添加标签" not in panel
    assert response.status_code == 403
    assert ContactTag.objects.filter(contact=c, tag=pool.vip).exists()


def test_staff_cannot_see_another_stores_contact_tags(client, pool):
    user = _login(client, pool.ws, role="staff")
    Staff.objects.filter(id=pool.e1.id).update(user=user)

    response = client.get(reverse("console:audiences:contact_tags", args=[pool.contacts["b"].id]))

    assert response.status_code == 404


def test_naive_refresh_times_are_never_shown(client, pool):
    """Times on the segment page read in the workspace's zone (Asia/Shanghai)."""
    _login(client, pool.ws)
    segment = services.segment_save(
        workspace=pool.ws,
        name="上海客户",
        rule=CITY_SH,
        now=datetime(2026, 3, 1, 16, 30, tzinfo=UTC),
    )

    html = client.get(reverse("console:audiences:segment", args=[segment.id])).content.decode()

    assert "2026-03-02 00:30" in html


# --- static segment from an uploaded list ---------------------------------------------------------


def test_uploaded_list_becomes_a_static_segment_and_unknown_lines_are_reported(client, pool):
    _login(client, pool.ws)
    upload = SimpleUploadedFile("list.csv", b"phone\n13900000001\n13900000000\n", "text/csv")

    response = client.post(
        reverse("console:audiences:segment_upload"), {"name": "门店名单", "file": upload}, follow=True
    )

    segment = Segment.objects.get(workspace=pool.ws, name="门店名单")
    assert segment.kind == "static" and segment.size == 1
    assert list(SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True)) == [
        pool.contacts["a"].id
    ]
    html = response.content.decode()
    assert "已从名单建立人群「门店名单」：1 位客户，1 行未能识别。" in html
    assert "第 3 行：未知手机号 139****0000" in html


def test_uploading_a_list_needs_a_header_and_write_rights(client, pool):
    _login(client, pool.ws)
    bad = SimpleUploadedFile("list.csv", b"13900000001\n", "text/csv")
    response = client.post(reverse("console:audiences:segment_upload"), {"name": "x", "file": bad})
    assert response.status_code == 422
    assert "第一行须为列名" in response.content.decode()
    client.logout()
    _login(client, pool.ws, role="analyst")
    ok = SimpleUploadedFile("list.csv", b"phone\n13900000001\n", "text/csv")
    assert client.post(reverse("console:audiences:segment_upload"), {"name": "y", "file": ok}).status_code == 403
    assert not Segment.objects.filter(workspace=pool.ws, name__in=["x", "y"]).exists()
