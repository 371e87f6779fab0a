"""Acquisition spend per channel and month: exact money, one entry per channel, campaign and
month, and refusals that name what is wrong."""

from datetime import date
from decimal import Decimal

import pytest

from siyu.commerce import queries, services
from siyu.commerce.models import ChannelSpend
from siyu.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def test_spend_is_stored_exactly_on_the_first_of_the_month(ws):
    spend = services.channel_spend_set(
        workspace=ws,
        channel="douyin",
        month=date(2026, 10, 17),
        amount="1200.10",
        campaign=" 双11 ",
    )
    assert (spend.channel, spend.month, spend.amount, spend.campaign) == (
        "douyin",
        date(2026, 10, 1),
        Decimal("1200.10"),
        "双11",
    )


def test_entering_the_same_month_again_replaces_the_amount(ws):
    services.channel_spend_set(
        workspace=ws, channel="douyin", month=date(2026, 10, 1), amount="100"
    )
    services.channel_spend_set(
        workspace=ws,
        channel="douyin",
        month=date(2026, 10, 31),
        amount=Decimal("80.5"),
        note="退款",
    )
    services.channel_spend_set(
        workspace=ws, channel="douyin", month=date(2026, 10, 1), amount="30", campaign="直播"
    )
    rows = list(
        ChannelSpend.objects.filter(workspace=ws)
        .order_by("campaign")
        .values_list("campaign", "amount", "note")
    )
    assert rows == [("", Decimal("80.50"), "退款"), ("直播", Decimal("30.00"), "")]


@pytest.mark.parametrize(
    ("kw", "path", "message"),
    [
        (
            {"channel": "tiktok"},
            "channel",
            "unknown channel 'tiktok'; use one of store_qr, wecom, "
            "official_account, mini_program, delivery_card, douyin, xiaohongshu, meituan, referral, app, "
            "store_pos, ads, import, other",
        ),
        ({"amount": "-0.01"}, "amount", "amount must not be negative"),
        ({"amount": "1.001"}, "amount", "amount has more than 2 decimal places (fen)"),
        ({"amount": 12.5}, "amount", 'amount must be a decimal (a string such as "1200.50")'),
        ({"amount": "abc"}, "amount", "amount 'abc' is not a number"),
        ({"amount": "NaN"}, "amount", "amount 'NaN' is not a number"),
        ({"amount": "1000000000000"}, "amount", "amount must be at most 999999999999.99"),
        ({"campaign": "x" * 101}, "campaign", "campaign is longer than 100 characters"),
    ],
)
def test_bad_spend_is_refused_with_the_field_and_nothing_is_written(ws, kw, path, message):
    entry = {"channel": "douyin", "month": date(2026, 10, 1), "amount": "1", **kw}
    with pytest.raises(ValidationFailed) as exc:
        services.channel_spend_set(workspace=ws, **entry)
    assert (exc.value.path, exc.value.message) == (path, message)
    assert ChannelSpend.objects.count() == 0


def test_a_batch_counts_created_updated_unchanged_and_is_refused_whole(ws):
    services.channel_spend_set(workspace=ws, channel="wecom", month=date(2026, 9, 1), amount="5")
    services.channel_spend_set(workspace=ws, channel="ads", month=date(2026, 9, 1), amount="7")
    result = services.channel_spends_set(
        workspace=ws,
        entries=[
            {"channel": "wecom", "month": date(2026, 9, 1), "amount": Decimal("5")},
            {"channel": "ads", "month": date(2026, 9, 15), "amount": Decimal("8")},
            {"channel": "douyin", "month": date(2026, 9, 1), "amount": Decimal("9")},
        ],
    )
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)

    with pytest.raises(ValidationFailed) as exc:
        services.channel_spends_set(
            workspace=ws,
            entries=[
                {"channel": "meituan", "month": date(2026, 8, 1), "amount": Decimal("1")},
                {"channel": "meituan", "month": date(2026, 8, 20), "amount": Decimal("2")},
                {"channel": "nope", "month": date(2026, 8, 1), "amount": Decimal("1")},
            ],
        )
    assert exc.value.errors == [
        {
            "path": "1",
            "message": "'meituan//2026-08' appears more than once in this batch (first at item 0)",
        },
        {"path": "2.channel", "message": exc.value.errors[1]["message"]},
    ]
    assert exc.value.errors[1]["message"].startswith("unknown channel 'nope'")
    assert not ChannelSpend.objects.filter(channel="meituan").exists()


def test_spend_list_is_scoped_filtered_and_newest_first(ws, other_ws):
    for month, channel in ((8, "douyin"), (10, "douyin"), (9, "wecom")):
        services.channel_spend_set(
            workspace=ws, channel=channel, month=date(2026, month, 1), amount="1"
        )
    services.channel_spend_set(
        workspace=other_ws, channel="douyin", month=date(2026, 10, 1), amount="9"
    )

    every = queries.channel_spend_list(workspace=ws)
    narrowed = queries.channel_spend_list(
        workspace=ws, channel="douyin", month_from=date(2026, 9, 30), month_to=date(2026, 10, 2)
    )

    assert [(s.month.month, s.channel) for s in every] == [
        (10, "douyin"),
        (9, "wecom"),
        (8, "douyin"),
    ]
    assert [(s.month.month, s.amount) for s in narrowed] == [(10, Decimal("1.00"))]
