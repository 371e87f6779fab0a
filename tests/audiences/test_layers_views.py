"""The layers console page (分层) over a small hand-made pool: the RFM matrix, the stage and intent
counts, the month-over-month flow, the configuration form and the recompute button, for an
owner, an analyst and a staff member, with exact numbers and messages.

The pool, layered with the threshold method (R high at most 30 days, F high from 2 orders, M high
from 500.00) at NOW, after a first refresh 19 days earlier (T1, in February):

    A  (S1)  orders 20 and 10 days ago, 300.00 each   重要价值   Feb 新客 (one order then) -> 复购客
    B  (S1)  one order 5 days ago, 800.00             重要发展   Feb 潜客 -> 新客
    C  (S2)  orders 100, 90, 80 days ago, 100.00 each 一般保持   流失 -> 流失 (80 > 4 x 10 days)
    D  (S2)  one order 200 days ago, 100.00           一般挽留   流失 -> 流失
    E  (S2)  one order 3 days ago, 100.00             一般发展   潜客 -> 新客
    F        never ordered, 3 product views            no class   潜客 -> 潜客, 意向

Revenue 1,900.00 over 5 classified contacts: A 600 (31.6%), B 800 (42.1%), C 300 (15.8%), D and
E 100 each (5.3%). The repeat buyers' rhythm (A and C, 10 days each) makes the median 10 days.
"""

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from siyu.audiences.layers_services import layer_config_update, layers_refresh
from siyu.audiences.models import ContactLayer, LayerConfig
from siyu.commerce.models import Store
from siyu.contacts.models import Contact
from siyu.tenancy.models import AuditLog, Workspace
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T1 = NOW - timedelta(days=19)
PAGE = "/audiences/layers/"
FLOW = "/audiences/layers/flow/"
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
THRESHOLDS = {
    "rfm_method": "threshold",
    "rfm_recency_days": 30,
    "rfm_frequency": 2,
    "rfm_monetary": "500",
}


@dataclass
class Layered:
    ws: Workspace
    s1: Store
    s2: Store
    contacts: dict[str, Contact]


def _order(ws, contact, amount, days):
    factories.order(ws, contact, amount, NOW - timedelta(days=days))


@pytest.fixture
def layered(ws, other_ws) -> Layered:
    s1, s2 = factories.store(ws, code="S1"), factories.store(ws, code="S2")
    stores = {"A": "S1", "B": "S1", "C": "S2", "D": "S2", "E": "S2", "F": None}
    c = {
        name: factories.contact(ws, phone=f"1390000000{i}", name=name, store_code=store)
        for i, (name, store) in enumerate(stores.items(), start=1)
    }
    _order(ws, c["A"], "300.00", 20)
    _order(ws, c["A"], "300.00", 10)
    _order(ws, c["B"], "800.00", 5)
    for days in (100, 90, 80):
        _order(ws, c["C"], "100.00", days)
    _order(ws, c["D"], "100.00", 200)
    _order(ws, c["E"], "100.00", 3)
    for _ in range(3):
        factories.event(ws, c["F"], type="product_view", occurred_at=NOW - timedelta(days=1))
    # Another brand's contacts, layered too, never show up here.
    other = factories.contact(other_ws, name="other", store_code=None)
    _order(other_ws, other, "99999.00", 1)
    layer_config_update(workspace=ws, values=THRESHOLDS)
    for workspace in (ws, other_ws):
        layers_refresh(workspace=workspace, now=T1)
        layers_refresh(workspace=workspace, now=NOW)
    return Layered(ws=ws, s1=s1, s2=s2, contacts=c)


def _work(row: DBTaskResult) -> None:
    """What the worker (siyu worker / db_worker) does with one queued task, inside the test's
    transaction (the worker command itself closes the connection when it is done)."""
    row.claim("test-worker")
    row.set_successful(row.task.call(*row.task_result.args))


def _login(client, ws, role="owner"):
    user = factories.member(ws, role=role)
    client.force_login(user)
    return user


def _matrix(html: str) -> dict[str, list[str]]:
    """class code -> [count, share of contacts, revenue share, AOV] as shown."""
    cells = re.findall(r'<td class="rfm-cell[^"]*" data-class="(\w+)">(.*?)</td>', html, re.S)
    return {
        code: [
            re.search(rf'data-testid="{key}">([^<]*)<', cell).group(1)
            for key in ("rfm-count", "rfm-share", "rfm-revenue-share", "rfm-aov")
        ]
        for code, cell in cells
    }


def _counts(html: str, attr: str) -> dict[str, int]:
    return {
        code: int(n)
        for code, n in re.findall(
            rf'data-{attr}="(\w+)">\s*<span[^>]*>[^<]*</span><strong>(\d+)</strong>', html
        )
    }


def _rows(html: str, testid: str) -> list[list[str]]:
    table = re.search(rf'<table[^>]*data-testid="{testid}".*?</table>', html, re.S).group(0)
    body = table.split("<tbody>")[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def _figure(html: str) -> dict:
    return json.loads(
        re.search(r'<script id="figure-flow"[^>]*>(.*?)</script>', html, re.S).group(1)
    )


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'id="cfg-{name}-error"[^>]*>([^<]*)<', html)
    return found.group(1) if found else ""


# --- the matrix and the counts ------------------------------------------------------------------


def test_matrix_shows_counts_shares_and_average_order_values(client, layered):
    _login(client, layered.ws)

    html = client.get(PAGE).content.decode()

    assert _matrix(html) == {
        "important_value": ["1", "20.0%", "31.6%", "¥300.00"],
        "important_develop": ["1", "20.0%", "42.1%", "¥800.00"],
        "important_keep": ["0", "0.0%", "0.0%", "—"],
        "important_retain": ["0", "0.0%", "0.0%", "—"],
        "general_value": ["0", "0.0%", "0.0%", "—"],
        "general_develop": ["1", "20.0%", "5.3%", "¥100.00"],
        "general_keep": ["1", "20.0%", "15.8%", "¥100.00"],
        "general_retain": ["1", "20.0%", "5.3%", "¥100.00"],
    }
    assert "5 位客户在 RFM 窗口内有订单" in html
    assert 'href="/audiences/layers/rfm/important_value/"' in html


def test_stage_and_intent_counts(client, layered):
    _login(client, layered.ws)

    html = client.get(PAGE).content.decode()

    assert _counts(html, "stage") == {
        "prospect": 1,
        "new": 2,
        "repeat": 1,
        "loyal": 0,
        "dormant": 0,
        "churned": 2,
    }
    assert _counts(html, "intent") == {"silent": 0, "interested": 1, "quoted": 0, "closed": 5}
    assert "共 6 位客户" in html


def test_before_the_first_refresh_the_page_says_so(client, ws):
    _login(client, ws)

    html = client.get(PAGE).content.decode()

    assert "还没有计算过分层" in html
    assert "还没有月度快照。" in html
    assert list(_matrix(html).values()) == [["0", "0.0%", "0.0%", "—"]] * 8


# --- the stage flow -----------------------------------------------------------------------------


def test_sankey_and_table_show_the_flows_between_the_two_month_ends(client, layered):
    _login(client, layered.ws)

    page = client.get(PAGE).content.decode()
    # The page shows a "computing" line and loads the flow of the newest month after it.
    assert 'data-testid="flow-loading"' in page and 'hx-get="/audiences/layers/flow/?month=2026-03"' in page
    html = client.get(FLOW).content.decode()

    sankey = _figure(html)["data"][0]
    assert sankey["type"] == "sankey"
    assert sankey["node"]["label"] == [
        "2026-02 潜客",
        "2026-02 新客",
        "2026-02 流失",
        "2026-03 潜客",
        "2026-03 新客",
        "2026-03 复购客",
        "2026-03 流失",
    ]
    assert sankey["link"]["source"] == [0, 0, 1, 2]
    assert sankey["link"]["target"] == [3, 4, 5, 6]
    assert sankey["link"]["value"] == [1, 2, 1, 2]
    # Rows: the stage at the end of February; columns: at the end of March, then the total.
    assert _rows(html, "flow-table") == [
        ["潜客", "1", "2", "0", "0", "0", "0", "3"],
        ["新客", "0", "0", "1", "0", "0", "0", "1"],
        ["复购客", "0", "0", "0", "0", "0", "0", "0"],
        ["忠诚客", "0", "0", "0", "0", "0", "0", "0"],
        ["沉睡", "0", "0", "0", "0", "0", "0", "0"],
        ["流失", "0", "0", "0", "0", "0", "2", "2"],
        ["合计", "1", "2", "1", "0", "0", "2", "6"],
    ]
    assert re.findall(r'<option value="([\d-]+)"( selected)?>', page) == [
        ("2026-03", " selected"),
        ("2026-02", ""),
    ]


def test_an_earlier_month_flows_from_no_record(client, layered):
    _login(client, layered.ws)

    assert 'hx-get="/audiences/layers/flow/?month=2026-02"' in client.get(
        PAGE, {"month": "2026-02"}
    ).content.decode()
    html = client.get(FLOW, {"month": "2026-02"}).content.decode()

    sankey = _figure(html)["data"][0]
    assert sankey["node"]["label"] == [
        "2026-01 无记录",
        "2026-02 潜客",
        "2026-02 新客",
        "2026-02 流失",
    ]
    assert sankey["link"]["value"] == [3, 1, 2]
    assert _rows(html, "flow-table")[-2:] == [
        ["无记录", "3", "1", "0", "0", "0", "2", "6"],
        ["合计", "3", "1", "0", "0", "0", "2", "6"],
    ]


# --- the contacts of a layer --------------------------------------------------------------------


def test_a_cell_opens_its_contacts_with_masked_phones(client, layered, django_assert_num_queries):
    _login(client, layered.ws, role="analyst")
    url = reverse("console:audiences:layer_contacts", args=["lifecycle", "churned"])

    # session, user, membership, page count, refresh time, page rows (contact and store
    # joined): no query per row.
    with django_assert_num_queries(6):
        html = client.get(url).content.decode()

    s2 = layered.s2.name
    assert _rows(html, "layer-contacts") == [
        ["C", "139****0003", s2, "80", "3", "¥300.00", "一般保持", "流失", "成交"],
        ["D", "139****0004", s2, "200", "1", "¥100.00", "一般挽留", "流失", "成交"],
    ]
    assert "13900000003" not in html
    assert "共 2 位客户" in html


def test_contacts_of_a_class(client, layered):
    _login(client, layered.ws)

    html = client.get("/audiences/layers/rfm/important_value/").content.decode()

    rows = _rows(html, "layer-contacts")
    assert [row[0] for row in rows] == ["A"]
    assert rows[0][3:] == ["10", "2", "¥600.00", "重要价值", "复购客", "成交"]
    assert "<h1>重要价值</h1>" in html


def test_unknown_layer_or_kind_is_not_found(client, layered):
    _login(client, layered.ws)

    assert client.get("/audiences/layers/rfm/sleepy/").status_code == 404
    assert client.get("/audiences/layers/stage/new/").status_code == 404


# --- who sees what ------------------------------------------------------------------------------


def test_staff_see_only_their_stores_numbers(client, layered):
    user = _login(client, layered.ws, role="staff")
    factories.staff(layered.ws, layered.s1, user=user)

    html = client.get(PAGE).content.decode()
    matrix = _matrix(html)
    listed = client.get("/audiences/layers/intent/closed/").content.decode()

    assert matrix["important_value"] == ["1", "50.0%", "42.9%", "¥300.00"]
    assert matrix["important_develop"] == ["1", "50.0%", "57.1%", "¥800.00"]
    assert matrix["general_keep"] == ["0", "0.0%", "0.0%", "—"]
    assert _counts(html, "stage")["churned"] == 0
    assert _rows(client.get(FLOW).content.decode(), "flow-table")[-1] == [
        "合计", "0", "1", "1", "0", "0", "0", "2"
    ]
    assert "仅含你所在门店的客户。" in html
    assert [row[0] for row in _rows(listed, "layer-contacts")] == ["B", "A"]
    assert "分层配置" in html and "fieldset disabled" in html


def test_staff_without_a_store_see_no_contacts(client, layered):
    _login(client, layered.ws, role="staff")

    html = client.get(PAGE).content.decode()

    assert all(cell[0] == "0" for cell in _matrix(html).values())
    assert sum(_counts(html, "stage").values()) == 0
    assert "这一层目前没有客户。" in client.get("/audiences/layers/intent/closed/").content.decode()


def test_another_workspace_sees_none_of_these_contacts(client, layered, other_ws):
    _login(client, other_ws)

    html = client.get(PAGE).content.decode()
    listed = client.get("/audiences/layers/intent/closed/").content.decode()

    assert _counts(html, "intent") == {"silent": 0, "interested": 0, "quoted": 0, "closed": 1}
    assert [row[0] for row in _rows(listed, "layer-contacts")] == ["other"]
    assert "13900000001" not in listed


# --- the configuration --------------------------------------------------------------------------


def _config(client, **values):
    data = {
        "rfm_method": "quintile",
        "rfm_window_days": "365",
        "rfm_recency_days": "",
        "rfm_frequency": "",
        "rfm_monetary": "",
        "loyal_orders": "4",
        "loyal_window_days": "365",
        "dormant_factor": "2",
        "churned_factor": "4",
        "default_interval_days": "90",
        "intent_window_days": "90",
        "intent_min_interactions": "3",
    }
    return client.post(reverse("console:audiences:layers_config"), {**data, **values})


def test_owner_saves_the_configuration(client, layered):
    user = _login(client, layered.ws)

    response = _config(client, rfm_window_days="180", loyal_orders="3", dormant_factor="2.5")

    assert response.status_code == 302
    assert response["Location"] == "/audiences/layers/#config"
    config = LayerConfig.objects.get(workspace=layered.ws)
    assert (config.rfm_method, config.rfm_window_days, config.rfm_frequency) == (
        "quintile",
        180,
        None,
    )
    assert (config.loyal_orders, str(config.dormant_factor)) == (3, "2.50")
    assert AuditLog.objects.filter(
        workspace=layered.ws, action="layers.config", actor_user=user
    ).exists()
    html = client.get(PAGE).content.decode()
    assert "分层配置已保存，重新计算后生效。" in html
    assert 'name="rfm_window_days" type="text" inputmode="decimal" value="180"' in html


def test_config_refusal_is_shown_next_to_its_field_and_nothing_changes(client, layered):
    _login(client, layered.ws)

    missing = _config(client, rfm_method="threshold", rfm_recency_days="30", rfm_monetary="500")
    order = _config(client, dormant_factor="4", churned_factor="3")
    word = _config(client, rfm_window_days="a year")

    assert missing.status_code == order.status_code == word.status_code == 422
    assert _field_error(missing.content.decode(), "rfm_frequency") == (
        "the threshold method needs rfm_frequency"
    )
    assert _field_error(order.content.decode(), "churned_factor") == (
        "churned_factor must be larger than dormant_factor"
    )
    assert _field_error(word.content.decode(), "rfm_window_days") == (
        "rfm_window_days must be a whole number"
    )
    # What was typed stays in the form.
    assert 'value="a year"' in word.content.decode()
    config = LayerConfig.objects.get(workspace=layered.ws)
    assert (config.rfm_method, config.rfm_frequency, config.rfm_window_days) == (
        "threshold",
        2,
        365,
    )


def test_analyst_reads_but_cannot_change_or_recompute(client, layered):
    _login(client, layered.ws, role="analyst")
    before = LayerConfig.objects.get(workspace=layered.ws).updated_at

    html = client.get(PAGE).content.decode()
    response = _config(client, rfm_window_days="30")
    recompute = client.post(reverse("console:audiences:layers_recompute"))

    assert _matrix(html)["important_value"][0] == "1"
    assert "fieldset disabled" in html
    assert "保存配置" not in html and "重新计算</button>" not in html
    assert response.status_code == recompute.status_code == 403
    assert LayerConfig.objects.get(workspace=layered.ws).updated_at == before
    assert DBTaskResult.objects.count() == 0


# --- recompute ----------------------------------------------------------------------------------


def test_recompute_runs_the_refresh(client, layered, settings):
    settings.TASKS = IMMEDIATE
    _login(client, layered.ws, role="operator")
    ContactLayer.objects.filter(workspace=layered.ws).delete()

    response = client.post(reverse("console:audiences:layers_recompute"), follow=True)

    html = response.content.decode()
    assert response.redirect_chain == [("/audiences/layers/", 302)]
    assert re.search(r"已重新计算 6 位客户的分层（\d{4}-\d{2} 快照已更新）。", html)
    assert ContactLayer.objects.filter(workspace=layered.ws).count() == 6


def test_recompute_through_the_worker_is_polled_until_done(client, layered):
    _login(client, layered.ws)

    response = client.post(reverse("console:audiences:layers_recompute"))

    task = DBTaskResult.objects.get()
    assert response["Location"] == f"/audiences/layers/?task={task.id}"
    page = client.get(response["Location"]).content.decode()
    status_url = f"/audiences/layers/status/{task.id}/"
    assert f'hx-get="{status_url}" hx-trigger="every 1s"' in page
    assert "正在重新计算分层…" in client.get(status_url, HTTP_HX_REQUEST="true").content.decode()

    _work(task)
    done = client.get(status_url, HTTP_HX_REQUEST="true")

    assert done["HX-Redirect"] == "/audiences/layers/"
    assert re.search(r"已重新计算 6 位客户的分层", client.get(PAGE).content.decode())


def test_a_failed_refresh_is_shown_and_polling_stops(client, layered):
    _login(client, layered.ws)
    client.post(reverse("console:audiences:layers_recompute"))
    task = DBTaskResult.objects.get()
    task.claim("test-worker")
    task.set_failed(RuntimeError("database went away"))

    html = client.get(f"/audiences/layers/status/{task.id}/", HTTP_HX_REQUEST="true")

    assert "重新计算失败，请稍后再试。" in html.content.decode()
    assert "hx-trigger" not in html.content.decode()


def test_another_workspaces_refresh_status_is_not_found(client, layered, other_ws):
    _login(client, layered.ws)
    client.post(reverse("console:audiences:layers_recompute"))
    task = DBTaskResult.objects.get()
    _login(client, other_ws)

    assert client.get(f"/audiences/layers/status/{task.id}/").status_code == 404
    assert client.get("/audiences/layers/status/not-a-task/").status_code == 404


# --- language and navigation --------------------------------------------------------------------


def test_sidebar_link_and_english_labels(client, layered):
    _login(client, layered.ws)
    assert (
        '<a href="/audiences/layers/" class="active">分层</a>' in client.get(PAGE).content.decode()
    )

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(PAGE).content.decode()

    assert '<a href="/audiences/layers/" class="active">Layers</a>' in html
    assert "RFM classes" in html
    assert "Stage flow (month over month)" in html
    flow = client.get(FLOW).content.decode()
    assert _figure(flow)["data"][0]["node"]["label"][0] == "2026-02 Prospect"
