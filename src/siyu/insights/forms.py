"""Console forms of the customer-value page: which model to fit, and a month of channel spend."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from siyu.contacts.models import SourceChannel
from siyu.insights.models import ModelKind


class FitForm(forms.Form):
    kind = forms.ChoiceField(label=_("模型"), choices=ModelKind.choices, initial=ModelKind.BG_NBD)


class SpendForm(forms.Form):
    """One channel's acquisition spend for one month; saving the same channel, campaign and
    month again replaces the amount (see ``commerce.services.channel_spend_set``)."""

    channel = forms.ChoiceField(
        label=_("获客渠道"),
        choices=SourceChannel.choices,
        error_messages={"invalid_choice": _("未知的获客渠道：%(value)s。")},
    )
    month = forms.DateField(
        label=_("月份"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        error_messages={"invalid": _("请按“年-月”填写月份，例如 2026-10。")},
    )
    amount = forms.DecimalField(
        label=_("花费（元）"),
        min_value=0,
        max_digits=14,
        decimal_places=2,
        error_messages={
            "min_value": _("花费不能为负数。"),
            "max_decimal_places": _("花费最多精确到分（两位小数）。"),
        },
    )
    campaign = forms.CharField(label=_("活动（可选）"), max_length=100, required=False)
    note = forms.CharField(label=_("备注"), max_length=200, required=False)
