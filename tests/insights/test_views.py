"""The customer-value console page: what an operator sees after a fit, the fit button and its
progress, channel spend entry and the CLV:CAC table, and who may see which contacts."""

import json
import re
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from siyu.commerce.models import ChannelSpend
from siyu.contacts.models import Contact
from siyu.insights import services
from siyu.insights.models import ContactScore, ModelFit
from tests import factories

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
PAGE = "/insights/"


def _login(client, ws, role="owner"):
    user = factories.member(ws, role=role)
    client.force_login(user)
    return user


def _fitted(ws, n=400, **kw):
    factories.simulated_orders(ws, n, **kw)
    fit = services.fit_workspace(workspace=ws, today=factories.SIMULATED_END)
    assert fit.status == "done", fit.message
    return fit


def _figure(html: str, element_id: str) -> dict:
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, element_id
    return json.loads(match.group(1))


def _row(html: str, channel: str) -> list[str]:
    """The cells of one CLV-by-channel row, tags stripped, plus each dash's tooltip."""
    match = re.search(rf'<tr data-channel="{channel}">(.*?)</tr>', html, re.S)
    assert match, channel
    return re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)


def _text(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell).strip()


def test_page_before_any_fit_explains_what_is_needed(client, ws):
    _login(client, ws)
    html = client.get(PAGE).content.decode()
    assert "还没有拟合过模型" in html
    assert "模型需要至少 30 位复购客户的订单。" in html
    assert "重新拟合" in html
    assert 'href="/insights/"' in html  # the sidebar link


def test_page_shows_parameters_holdout_chart_and_clv_histogram(client, ws):
    fit = _fitted(ws)
    _login(client, ws)

    html = client.get(PAGE).content.decode()

    assert f'<dd data-testid="fit-customers">{fit.customers}</dd>' in html
    assert f'<dd data-testid="fit-repeat-buyers">{fit.repeat_buyers}</dd>' in html
    for symbol, name in (("r", "r"), ("α", "alpha"), ("a", "a"), ("b", "b")):
        value = f"{fit.transaction_params[name]:.4f}"
        assert f'<td class="mono">{symbol}</td><td class="num mono">{value}</td>' in html
    for symbol, name in (("p", "p"), ("q", "q"), ("γ", "gamma")):
        assert (
            f'<td class="mono">{symbol}</td><td class="num mono">{fit.spend_params[name]:.4f}</td>'
            in html
        )
    t = fit.transaction_params
    rate = f"{t['r'] / t['alpha']:.3g}"
    assert f"r/α = {rate}，即活跃客户平均每周购买 {rate} 次。" in html
    assert f"{fit.transaction_log_likelihood:.2f}" in html

    holdout = _figure(html, "figure-holdout")
    buckets = fit.calibration["buckets"]
    assert [trace["name"] for trace in holdout["data"]] == ["预测", "实际"]
    assert holdout["data"][0]["x"] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert holdout["data"][0]["y"] == [b["predicted"] for b in buckets]
    assert holdout["data"][1]["y"] == [b["actual"] for b in buckets]
    assert holdout["layout"]["barmode"] == "group"
    error = fit.calibration["error_pct"]
    assert (
        f"留出期共预测 {fit.calibration['total_predicted']} 次复购，实际 {fit.calibration['total_actual']} 次，"
        f"误差 <strong>{error:.2f}%</strong>。"
    ) in html

    histogram = _figure(html, "figure-clv")
    assert (
        sum(histogram["data"][0]["y"]) == ContactScore.objects.filter(workspace=ws).count() == 400
    )
    for band in ("low", "medium", "high"):
        n = ContactScore.objects.filter(workspace=ws, churn_band=band).count()
        assert re.search(rf'band-{band}"><span>[^<]+</span><strong>{n}</strong>', html), band


def test_fit_button_enqueues_a_fit_for_the_worker_and_the_page_polls_it(
    client, ws, django_capture_on_commit_callbacks
):
    _login(client, ws, role="analyst")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("console:insights:fit_start"), {"kind": "pareto_nbd"})
    assert response.status_code == 302

    fit = ModelFit.objects.get(workspace=ws)
    assert (fit.kind, fit.status, fit.progress) == ("pareto_nbd", "running", 0)
    task = DBTaskResult.objects.get()
    assert task.args_kwargs == {"args": [ws.id, fit.id], "kwargs": {}}
    html = client.get(PAGE).content.decode()
    status_url = reverse("console:insights:fit_status", args=[fit.id])
    assert f'hx-get="{status_url}" hx-trigger="every 1s" hx-swap="outerHTML"' in html
    assert "正在拟合 Pareto/NBD 模型…" in html
    assert '<progress max="100" value="0">0%</progress>' in html
    assert "disabled>重新拟合</button>" in html

    ModelFit.objects.filter(id=fit.id).update(progress=40)
    fragment = client.get(status_url, headers={"HX-Request": "true"}).content.decode()
    assert '<progress max="100" value="40">40%</progress>' in fragment
    assert 'hx-trigger="every 1s"' in fragment


def test_fit_button_with_the_immediate_backend_completes_and_shows_results(
    client, ws, settings, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE
    factories.simulated_orders(ws, 400)
    _login(client, ws, role="operator")

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("console:insights:fit_start"), {"kind": "bgnbd"})

    fit = ModelFit.objects.get(workspace=ws)
    assert (fit.status, fit.progress, fit.customers) == ("done", 100, 400)
    poll = client.get(
        reverse("console:insights:fit_status", args=[fit.id]), headers={"HX-Request": "true"}
    )
    assert poll["HX-Refresh"] == "true"  # the finished poll reloads the page with the results
    html = client.get(PAGE).content.decode()
    assert '<dd data-testid="fit-customers">400</dd>' in html
    assert 'id="figure-holdout"' in html
    assert 'hx-trigger="every 1s"' not in html


def test_failed_fit_shows_its_message(client, ws, settings, django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE
    _login(client, ws)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("console:insights:fit_start"), {"kind": "bgnbd"})

    html = client.get(PAGE).content.decode()

    assert ModelFit.objects.get(workspace=ws).status == "failed"
    assert (
        "的拟合失败：This workspace has no paid orders yet; there is nothing to fit.</div>" in html
    )
    assert 'hx-trigger="every 1s"' not in html


def test_staff_cannot_start_a_fit_and_an_unknown_model_is_refused(client, ws):
    _login(client, ws, role="staff")
    assert client.post(reverse("console:insights:fit_start"), {"kind": "bgnbd"}).status_code == 403
    assert "重新拟合</button>" not in client.get(PAGE).content.decode()
    _login(client, ws, role="owner")
    response = client.post(reverse("console:insights:fit_start"), {"kind": "magic"})
    assert response.status_code == 400
    assert "选择一个有效的选项。 magic 不在可用的选项中。" in response.content.decode()
    assert ModelFit.objects.count() == 0


def test_another_workspaces_fit_is_not_found(client, ws, other_ws):
    theirs = services.model_fit_start(workspace=other_ws)
    _login(client, ws)
    response = client.get(reverse("console:insights:fit_status", args=[theirs.id]))
    assert response.status_code == 404


def test_staff_see_only_their_stores_at_risk_contacts_and_phones_stay_masked(client, ws):
    mine, theirs = factories.store(ws, name="徐汇店"), factories.store(ws, name="静安店")
    factories.simulated_orders(ws, 400)
    ids = list(Contact.objects.filter(workspace=ws).order_by("id").values_list("id", flat=True))
    Contact.objects.filter(id__in=ids[::2]).update(store=mine)
    Contact.objects.filter(id__in=ids[1::2]).update(store=theirs)
    services.fit_workspace(workspace=ws, today=factories.SIMULATED_END)
    at_risk = ContactScore.objects.filter(workspace=ws, churn_band__in=["medium", "high"])
    top_of_mine = (
        at_risk.filter(contact__store=mine).order_by("-historical_value", "p_alive").first()
    )
    Contact.objects.filter(id=top_of_mine.contact_id).update(
        phone_masked="138****5678", phone_enc="not-shown"
    )
    user = factories.member(ws, role="staff")
    factories.staff(ws, mine, user=user)
    client.force_login(user)

    html = client.get(PAGE).content.decode()
    table = html[html.index('data-testid="at-risk"') :]
    shown = [int(i) for i in re.findall(r'href="/contacts/(\d+)/"', table)]

    expected = list(
        at_risk.filter(contact__store=mine)
        .order_by("-historical_value", "p_alive")
        .values_list("contact_id", flat=True)[:50]
    )
    assert shown == expected
    assert "仅含你所在门店的客户。" in html
    assert "138****5678" in table

    _login(client, ws, role="analyst")
    table = client.get(PAGE).content.decode().split('data-testid="at-risk"')[1]
    everyone = [int(i) for i in re.findall(r'href="/contacts/(\d+)/"', table)]
    assert any(Contact.objects.get(id=i).store_id == theirs.id for i in everyone)
    assert len(everyone) == 50
    assert "138****5678" in table


def test_spend_form_refuses_bad_input_with_messages_and_saves_nothing(client, ws):
    _login(client, ws)
    url = reverse("console:insights:spend_save")

    negative = client.post(url, {"channel": "douyin", "month": "2026-10", "amount": "-5"})
    unknown = client.post(url, {"channel": "tiktok", "month": "2026-10", "amount": "100"})
    bad = client.post(url, {"channel": "douyin", "month": "10/2026", "amount": "1.005"})

    assert negative.status_code == unknown.status_code == bad.status_code == 400
    assert '<div class="field-error">花费不能为负数。</div>' in negative.content.decode()
    assert '<div class="field-error">未知的获客渠道：tiktok。</div>' in unknown.content.decode()
    assert (
        '<div class="field-error">请按“年-月”填写月份，例如 2026-10。</div>' in bad.content.decode()
    )
    assert '<div class="field-error">花费最多精确到分（两位小数）。</div>' in bad.content.decode()
    assert ChannelSpend.objects.count() == 0


def test_spend_form_saves_and_a_second_entry_for_the_month_replaces_it(client, ws):
    _login(client, ws, role="operator")
    url = reverse("console:insights:spend_save")
    first = client.post(url, {"channel": "douyin", "month": "2026-10", "amount": "1200.50"})
    client.post(url, {"channel": "douyin", "month": "2026-10", "amount": "1500", "note": "改价"})

    assert first.status_code == 302 and first["Location"] == "/insights/#spend"
    spend = ChannelSpend.objects.get(workspace=ws)
    assert (spend.channel, spend.month, spend.amount, spend.note) == (
        "douyin",
        date(2026, 10, 1),
        Decimal("1500.00"),
        "改价",
    )
    html = client.get(PAGE).content.decode()
    assert (
        '<td>2026-10</td><td>抖音</td><td>—</td><td class="num">¥1,500.00</td><td>改价</td>' in html
    )


def test_analysts_and_staff_cannot_enter_spend(client, ws):
    for role in ("analyst", "staff"):
        _login(client, ws, role=role)
        response = client.post(
            reverse("console:insights:spend_save"),
            {"channel": "douyin", "month": "2026-10", "amount": "1"},
        )
        assert response.status_code == 403
        assert "保存花费" not in client.get(PAGE).content.decode()
    assert ChannelSpend.objects.count() == 0


def test_clv_to_cac_per_channel_with_and_without_spend(client, ws):
    _fitted(ws, channels=("douyin", "wecom", "official_account"))
    tz = ZoneInfo(ws.time_zone)
    douyin = Contact.objects.filter(workspace=ws, source_channel="douyin")
    months = sorted({c.first_seen_at.astimezone(tz).date().replace(day=1) for c in douyin})
    spend_months = months[-3:]
    ChannelSpend.objects.bulk_create(
        [
            ChannelSpend(workspace=ws, channel="douyin", month=m, amount=Decimal("3000.00"))
            for m in spend_months
        ]
        + [ChannelSpend(workspace=ws, channel="wecom", month=months[-1], amount=Decimal("0"))]
    )
    _login(client, ws)

    html = client.get(PAGE).content.decode()

    acquired = sum(
        1 for c in douyin if c.first_seen_at.astimezone(tz).date().replace(day=1) in spend_months
    )
    total_clv = sum(s.clv for s in ContactScore.objects.filter(contact__in=douyin))
    clv_per_contact = total_clv / douyin.count()
    cac = Decimal("9000.00") / acquired
    cells = [_text(c) for c in _row(html, "douyin")]
    assert cells == [
        "抖音",
        str(douyin.count()),
        str(douyin.count()),
        f"¥{clv_per_contact.quantize(Decimal('0.01')):,}",
        "¥9,000.00",
        str(acquired),
        f"¥{cac.quantize(Decimal('0.01')):,}",
        f"{float(clv_per_contact / cac):.2f}",
    ]
    wecom = _row(html, "wecom")
    assert _text(wecom[4]) == "¥0.00"
    assert wecom[7] == '<span class="dash" title="该渠道录入的花费为 0，CAC 无从计算。">—</span>'
    official = _row(html, "official_account")
    assert official[4] == '<span class="dash" title="没有录入该渠道的获客花费。">—</span>'
    assert official[7] == '<span class="dash" title="没有录入该渠道的获客花费。">—</span>'
    assert "NaN" not in html


def test_contact_page_shows_the_contacts_scores(client, ws):
    _fitted(ws)
    score = ContactScore.objects.filter(workspace=ws, frequency__gt=0).order_by("id").first()
    never_bought = factories.contact(ws, name="新客")
    _login(client, ws)

    html = client.get(reverse("console:contact", args=[score.contact_id])).content.decode()

    assert 'data-testid="contact-score"' in html
    assert f"<dt>仍活跃的概率</dt><dd>{score.p_alive * 100:.1f}%</dd>" in html
    assert f"<dd>{score.expected_purchases_90d:.2f} 次</dd>" in html
    assert f"<dd>¥{score.clv:,}</dd>" in html
    assert f"<dd>¥{score.expected_order_value:,}</dd>" in html
    assert score.get_churn_band_display() in html
    other = client.get(reverse("console:contact", args=[never_bought.id])).content.decode()
    assert 'data-testid="contact-score"' not in other


def test_page_in_english(client, ws, settings):
    _fitted(ws)
    _login(client, ws)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    html = client.get(PAGE).content.decode()

    assert "Fit now</button>" in html
    assert "Holdout check: predicted vs. actual repeat purchases" in html
    assert [t["name"] for t in _figure(html, "figure-holdout")["data"]] == ["Predicted", "Actual"]
    assert (
        '<span class="dash" title="No acquisition spend entered for this channel.">—</span>' in html
    )
