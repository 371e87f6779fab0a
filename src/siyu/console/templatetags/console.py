"""Number formats the console repeats on every page."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.3333 -> "33.3%"; a missing ratio shows as a dash rather than a misleading 0%."""
    if value is None:
        return "—"
    return f"{floatformat(value * 100, digits)}%"


@register.filter
def money(value: Decimal | float | None) -> str:
    """¥1,709.10 — grouped by thousands in every language, as finance teams read it."""
    if value is None:
        return "—"
    return f"¥{value:,.2f}"


@register.filter
def signed_percent(value: float | None) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else ""
    return f"{sign}{floatformat(value * 100, 1)}%"
