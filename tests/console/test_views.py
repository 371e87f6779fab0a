from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.analytics.queries import rollups_last_day
from siyu.analytics.services import rollups_backfill
from siyu.contacts.services import contact_merge
from siyu.tenancy.models import ApiKey
from siyu.tenancy.services import api_key_create, hash_api_key, membership_set
from tests import factories

pytestmark = pytest.mark.django_db


def _login(client, ws, role="owner"):
    user = factories.member(ws, role=role)
    client.force_login(user)
    return user


def test_console_pages_redirect_to_login_when_signed_out(client, ws):
    for name in ("console:home", "console:contacts", "console:api_keys"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("console:login"))


def test_sign_in_with_password_lands_on_the_dashboard(client, ws):
    factories.member(ws, username="amy", password="secret-pass-1")
    response = client.post(
        reverse("console:login"), {"username": "amy", "password": "secret-pass-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("console:home")
    assert "私域用户池" in response.content.decode()


def test_wrong_password_shows_an_error(client, ws):
    factories.member(ws, username="amy", password="secret-pass-1")
    response = client.post(reverse("console:login"), {"username": "amy", "password": "nope-nope"})
    assert "用户名或密码不正确" in response.content.decode()


def test_user_without_workspace_sees_a_clear_message(client, db):
    client.force_login(factories.user())
    response = client.get(reverse("console:home"))
    assert response.status_code == 403
    assert "你还没有加入任何工作区" in response.content.decode()


def test_dashboard_shows_exact_pool_revenue_and_repeat_rate(client, ws, other_ws):
    now = timezone.now()
    a = factories.contact(
        ws, name="张三", first_seen_at=now - timedelta(days=3), source_channel="store_qr"
    )
    b = factories.contact(
        ws, name="李四", first_seen_at=now - timedelta(days=2), source_channel="wecom"
    )
    c = factories.contact(
        ws, name="王五", first_seen_at=now - timedelta(days=1), source_channel="wecom"
    )
    factories.order(ws, a, "120.00", paid_at=now - timedelta(days=3))
    factories.order(ws, a, "60.00", paid_at=now - timedelta(days=2))
    factories.order(
        ws,
        b,
        "45.50",
        paid_at=now - timedelta(days=2),
        refunded_amount="5.50",
        status="partially_refunded",
    )
    factories.order(ws, c, "30.00", paid_at=now - timedelta(days=1))
    # Another brand's data must not leak into these numbers.
    stranger = factories.contact(other_ws, first_seen_at=now - timedelta(days=1))
    factories.order(other_ws, stranger, "999.00", paid_at=now - timedelta(days=1))
    factories.order(other_ws, stranger, "999.00", paid_at=now - timedelta(days=1))
    _login(client, ws)

    response = client.get(reverse("console:home"))

    page = response.content.decode()
    assert response.context["pool_size"] == 3
    assert '<div class="pool-value" data-testid="pool-size">3</div>' in page
    assert '<div class="pool-value" data-testid="repeat-rate">33.3%</div>' in page
    assert "1 / 3 位购买客户下单 ≥2 次" in page
    assert "¥250.00" in page  # net revenue: 255.50 paid less 5.50 refunded
    assert "¥62.50" in page  # AOV: 250.00 / 4 orders
    cards = {card.label: card.value for card in response.context["cards"]}
    assert cards == {
        "新增客户": 3,
        "购买客户": 3,
        "订单数": 4,
        "收入": 250,
        "客单价": 62.5,
        "复购率": 1 / 3,
    }
    assert "期间内下单 ≥2 次的客户数 ÷ 期间内下单客户数" in page
    figure = response.context["new_contacts_figure"]
    assert sorted((trace["name"], sum(trace["y"])) for trace in figure["data"]) == [
        ("企业微信", 2),
        ("门店渠道活码", 1),
    ]
    assert sum(response.context["orders_figure"]["data"][0]["y"]) == 4
    assert 'id="figure-orders"' in page and reverse("console:plotly_js") in page


def test_dashboard_groups_days_in_the_workspace_time_zone(client, db):
    ws = factories.workspace(time_zone="Asia/Shanghai")
    shanghai = ZoneInfo("Asia/Shanghai")
    today = timezone.now().astimezone(shanghai).date()
    # 00:30 in Shanghai is 16:30 UTC the day before: it must count on the Shanghai date.
    paid = datetime.combine(today, time(0, 30), tzinfo=shanghai)
    assert paid.astimezone(UTC).date() != today
    buyer = factories.contact(ws, first_seen_at=paid)
    factories.order(ws, buyer, "10.00", paid_at=paid)
    _login(client, ws)

    response = client.get(reverse("console:home"))

    orders = response.context["orders_figure"]["data"][0]
    assert orders["x"][-1] == today.isoformat()
    assert orders["y"][-2:] == [0, 1]


def test_plotly_is_served_locally(client, db):
    response = client.get(reverse("console:plotly_js"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript"
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()


@pytest.mark.parametrize(
    "query", ["138****5678", "13812345678", "+86 138 1234 5678", "M-0042", "芳"]
)
def test_contact_search_finds_by_masked_phone_full_phone_member_no_and_name(client, ws, query):
    factories.contact(
        ws,
        identities=[
            {"kind": "phone", "value": "13812345678"},
            {"kind": "member_no", "value": "M-0042"},
        ],
        name="王芳",
    )
    factories.contact(ws, phone="13900000000", name="赵六")
    _login(client, ws)

    response = client.get(reverse("console:contacts"), {"q": query})

    page = response.content.decode()
    assert "王芳" in page and "赵六" not in page
    assert "138****5678" in page
    assert "+8613812345678" not in page  # the list never decrypts


def test_live_search_returns_only_the_results_fragment(client, ws):
    factories.contact(ws, name="王芳")
    _login(client, ws)
    response = client.get(reverse("console:contacts"), {"q": "王"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "王芳" in page and "<html" not in page and 'id="contact-results"' not in page


def test_contact_list_costs_a_bounded_number_of_queries(client, ws, django_assert_num_queries):
    store = factories.store(ws)
    staff = factories.staff(ws, store)
    for i in range(30):
        c = factories.contact(
            ws, name=f"客户{i}", store_code=store.code, owner_staff_code=staff.code
        )
        factories.order(ws, c, "10.00")
    _login(client, ws)
    # session, user, memberships+workspace, count, page rows, the page's order totals
    with django_assert_num_queries(6):
        response = client.get(reverse("console:contacts"))
    assert response.status_code == 200
    first = response.context["page"][0]
    assert (
        first.orders_count == 1
        and first.store.name == store.name
        and first.owner_staff.name == staff.name
    )
    assert "第 1 / 2 页" in response.content.decode()


def test_contact_list_shows_order_count_and_total(client, ws):
    c = factories.contact(ws, name="王芳")
    factories.order(ws, c, "12.30")
    factories.order(ws, c, "7.70")
    _login(client, ws)
    page = client.get(reverse("console:contacts")).content.decode()
    assert '<td class="num">2</td>' in page and "¥20.00" in page


def test_owner_sees_full_phone_analyst_sees_masked(client, ws):
    c = factories.contact(ws, phone="13812345678", name="王芳")
    _login(client, ws, role="owner")
    assert "+8613812345678" in client.get(reverse("console:contact", args=[c.id])).content.decode()

    client.logout()
    _login(client, ws, role="analyst")
    page = client.get(reverse("console:contact", args=[c.id])).content.decode()
    assert '<dd class="mono" data-testid="phone">138****5678</dd>' in page
    assert "13812345678" not in page


def test_contact_page_shows_profile_orders_events_consent_and_merges(client, ws):
    store = factories.store(ws, name="徐汇店")
    staff = factories.staff(ws, store, name="小李")
    factories.contact(ws, name="推荐人甲", phone="13700000009")
    c = factories.contact(
        ws,
        phone="13812345678",
        name="王芳",
        source_channel="store_qr",
        store_code=store.code,
        owner_staff_code=staff.code,
        consent={"sms": "opted_out", "wecom": "granted"},
        first_touch={
            "campaign": "周二会员日",
            "state": "qr-xuhui-01",
            "store_code": store.code,
            "staff_code": staff.code,
        },
        referred_by={"kind": "phone", "value": "13700000009"},
    )
    dup = factories.contact(ws, identities=[{"kind": "member_no", "value": "M-7"}])
    contact_merge(workspace=ws, survivor=c, others=[dup], reason="同一手机号")
    order = factories.order(ws, c, "59.80", items=[("SKU-1", "草莓", 2, "29.90")])
    factories.event(ws, c, "coupon_claim", occurred_at=timezone.now() - timedelta(days=2))
    factories.event(ws, c, "join_group", occurred_at=timezone.now() - timedelta(days=1))
    _login(client, ws)

    page = client.get(reverse("console:contact", args=[c.id])).content.decode()

    for text in (
        "王芳",
        "徐汇店",
        "小李",
        "周二会员日",
        "qr-xuhui-01",
        "推荐人甲",
        "门店渠道活码",
        order.order_no,
        "草莓",
        "¥59.80",
        "已退订",
        "已同意",
        "会员号",
        "M-7",
    ):
        assert text in page, text
    assert page.index("入群") < page.index("领券")  # newest event first
    assert f"由 #{dup.id} 合并而来，原因：同一手机号" in page


def test_staff_sees_only_their_stores_contacts(client, ws):
    mine, theirs = factories.store(ws), factories.store(ws)
    user = factories.member(ws, role="staff")
    factories.staff(ws, mine, user=user)
    own = factories.contact(ws, name="本店客户", store_code=mine.code, first_seen_at=timezone.now())
    other = factories.contact(
        ws, name="别店客户", store_code=theirs.code, first_seen_at=timezone.now()
    )
    factories.order(ws, other, "88.00", paid_at=timezone.now())
    client.force_login(user)

    listing = client.get(reverse("console:contacts")).content.decode()
    assert "本店客户" in listing and "别店客户" not in listing
    assert client.get(reverse("console:contact", args=[own.id])).status_code == 200
    assert client.get(reverse("console:contact", args=[other.id])).status_code == 404
    home = client.get(reverse("console:home"))
    assert home.context["pool_size"] == 1
    assert {card.label: card.value for card in home.context["cards"]}["订单数"] == 0
    assert client.get(reverse("console:api_keys")).status_code == 403


def test_contact_of_another_workspace_is_not_found(client, ws, other_ws):
    theirs = factories.contact(other_ws, name="别家客户", phone="13700000001")
    _login(client, ws)

    response = client.get(reverse("console:contact", args=[theirs.id]))

    assert response.status_code == 404
    assert "别家客户" not in response.content.decode()
    assert "别家客户" not in client.get(reverse("console:contacts"), {"q": "别家"}).content.decode()


def test_workspace_switch_only_to_own_workspaces(client, ws, other_ws):
    third = factories.workspace(name="第三品牌")
    user = _login(client, ws)
    factories.contact(other_ws, name="二号品牌客户")
    membership_set(workspace=other_ws, user=user, role="analyst")
    assert "二号品牌客户" not in client.get(reverse("console:contacts")).content.decode()

    client.post(reverse("console:workspace_switch"), {"workspace_id": other_ws.id})
    assert "二号品牌客户" in client.get(reverse("console:contacts")).content.decode()

    client.post(reverse("console:workspace_switch"), {"workspace_id": third.id})
    page = client.get(reverse("console:home")).content.decode()
    assert client.session["console_workspace_id"] == other_ws.id
    assert "第三品牌" not in page


def test_english_switch_shows_english_strings(client, ws):
    factories.contact(ws, name="王芳", source_channel="wecom")
    _login(client, ws)

    response = client.post(
        reverse("set_language"),
        {"language": "en", "next": reverse("console:contacts")},
        follow=True,
    )

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("console:contacts")
    assert "Contacts" in page and "Search" in page and "WeCom" in page
    assert "客户池" not in page and "搜索" not in page
    home = client.get(reverse("console:home")).content.decode()
    assert "Customer pool" in home and "Repeat purchase rate" in home


def test_api_key_is_shown_once_and_can_be_revoked(client, ws):
    _login(client, ws)

    created = client.post(reverse("console:api_keys"), {"name": "CRM 同步"})

    raw = created.context["new_key"]
    assert raw.startswith("sy_") and raw in created.content.decode()
    key = ApiKey.objects.get(workspace=ws)
    assert key.key_hash == hash_api_key(raw) and key.name == "CRM 同步"
    listing = client.get(reverse("console:api_keys")).content.decode()
    assert raw not in listing and f"sy_{key.prefix}_…" in listing and "有效" in listing

    client.post(reverse("console:api_key_revoke", args=[key.id]))
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "已于" in client.get(reverse("console:api_keys")).content.decode()


def test_api_keys_are_for_owners_and_other_workspaces_keys_cannot_be_revoked(client, ws, other_ws):
    theirs, _ = api_key_create(workspace=other_ws, name="theirs")
    _login(client, ws, role="operator")
    assert client.get(reverse("console:api_keys")).status_code == 403
    client.logout()
    _login(client, ws, role="owner")

    assert client.post(reverse("console:api_key_revoke", args=[theirs.id])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_history_restore_gets_the_whole_contacts_page(client, ws):
    _login(client, ws)
    response = client.get(
        reverse("console:contacts"),
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in response.content.decode()


def test_dashboard_query_count_does_not_grow_with_data(client, ws, django_assert_num_queries):
    now = timezone.now()
    for i in range(20):
        c = factories.contact(ws, first_seen_at=now - timedelta(days=i))
        factories.order(ws, c, "10.00", paid_at=now - timedelta(days=i))
        factories.order(ws, c, "10.00", paid_at=now - timedelta(days=i + 40))
    _login(client, ws)
    # session, user, memberships; 2 snapshot lookups (none yet: computed live); rollups' last
    # day; 2 daily series (contacts, orders: raw, as no rollups exist); 2 periods x repeat
    # purchase; repeat all time; pool. A period's orders, revenue and new contacts are sums of
    # the daily series.
    with django_assert_num_queries(12):
        response = client.get(reverse("console:home"))
    assert response.context["repeat_rate"] == 1
    # With rollups built: one more query (the rollup days), raw rows only for today.
    rollups_backfill(workspace=ws)
    with django_assert_num_queries(13):
        again = client.get(reverse("console:home"))
    assert again.context["repeat_rate"] == 1


def test_dashboard_reads_rollups_with_the_same_figures_as_the_raw_tables(client, ws):
    now = timezone.now()
    mine, theirs = factories.store(ws), factories.store(ws)
    for i in range(0, 70, 3):
        store = mine if i % 2 else theirs
        c = factories.contact(
            ws,
            first_seen_at=now - timedelta(days=i),
            source_channel="wecom" if i % 2 else "store_qr",
            store_code=store.code,
        )
        factories.order(ws, c, "10.50", paid_at=now - timedelta(days=i))
        factories.order(
            ws,
            c,
            "20.00",
            paid_at=now - timedelta(days=i // 2),
            refunded_amount="5.00",
            status="partially_refunded",
        )
    staff_user = factories.member(ws, role="staff")
    factories.staff(ws, mine, user=staff_user)
    owner = _login(client, ws)

    def shown(user):
        client.force_login(user)
        r = client.get(reverse("console:home"))
        cards = [(c.label, c.value, c.previous) for c in r.context["cards"]]
        figures = (r.context["new_contacts_figure"]["data"], r.context["orders_figure"]["data"])
        return r.context["pool_size"], r.context["repeat_rate"], cards, figures

    raw = {u: shown(u) for u in (owner, staff_user)}
    rollups_backfill(workspace=ws)
    assert rollups_last_day(workspace=ws) is not None
    for user in (owner, staff_user):
        assert shown(user) == raw[user]
    assert raw[owner] != raw[staff_user]
