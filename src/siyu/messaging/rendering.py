"""Template variables: which exist, how a template is checked, and how it renders — in SQL for
a whole audience at once, and in Python for a preview.

Two kinds of variables. Contact variables ({{nickname}} {{name}} {{city}} {{member_no}}
{{store}}) differ per recipient and are read from the contact's row. Constant variables
({{product}} {{coupon}} {{link}}) are the same for a whole audience: {{product}} is the attached
product's name, {{coupon}} and {{link}} are given when the audience is queued.

A text renders as a concatenation of its pieces — each literal piece and each constant a SQL
parameter, each contact variable its column expression — so a value is never searched for
placeholders again: a nickname that reads "{{coupon}}" stays as it is."""

from __future__ import annotations

import re
from collections.abc import Mapping

from siyu.errors import ValidationFailed

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: contact variable -> SQL over contacts_contact ``c`` and commerce_store ``s`` (LEFT JOINed).
CONTACT_VARIABLES: dict[str, str] = {
    "nickname": "COALESCE(NULLIF(c.nickname, ''), c.name, '')",
    "name": "COALESCE(NULLIF(c.name, ''), c.nickname, '')",
    "city": "COALESCE(c.city, '')",
    "member_no": "COALESCE(c.member_no, '')",
    "store": "COALESCE(s.name, '')",
}
#: variables whose value is one for the whole audience.
CONSTANT_VARIABLES = ("product", "coupon", "link")
#: every variable a template may use.
VARIABLES: tuple[str, ...] = (*CONTACT_VARIABLES, *CONSTANT_VARIABLES)
#: the longest value a constant variable may carry.
MAX_CONSTANT_LENGTH = 500


def normalise(text: str, *, field: str) -> str:
    """``text`` with every placeholder written ``{{name}}``; refuses unknown variables and
    stray braces, naming them and the variables that exist."""

    def check(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in VARIABLES:
            known = ", ".join(f"{{{{{v}}}}}" for v in sorted(VARIABLES))
            raise ValidationFailed(
                "unknown_variable",
                f"Unknown variable {{{{{name}}}}} in the {field}; use one of {known}.",
                path=field,
            )
        return f"{{{{{name}}}}}"

    out = _PLACEHOLDER.sub(check, text)
    leftover = _PLACEHOLDER.sub("", out)
    if "{{" in leftover or "}}" in leftover:
        raise ValidationFailed(
            "bad_placeholder",
            f"The {field} has a '{{{{' or '}}}}' that is not a {{{{variable}}}}.",
            path=field,
        )
    return out


def used(*texts: str) -> set[str]:
    """The variables the (normalised) texts use."""
    return {name for text in texts for name in _PLACEHOLDER.findall(text)}


def constants_for(
    *texts: str, product_name: str | None, given: Mapping[str, str] | None
) -> dict[str, str]:
    """The constant variables' values for one queueing: {{product}} from the attached product
    (``given`` may override it), the rest from ``given``. Refuses, naming it, a variable the
    texts use and nobody gave, a contact variable or an unknown name in ``given``, and a value
    that is not a short string."""
    given = dict(given or {})
    for name, value in given.items():
        if name in CONTACT_VARIABLES:
            raise ValidationFailed(
                "contact_variable_given",
                f"{{{{{name}}}}} comes from each contact and cannot be given for the audience.",
                path=f"variables.{name}",
            )
        if name not in CONSTANT_VARIABLES:
            known = ", ".join(CONSTANT_VARIABLES)
            raise ValidationFailed(
                "unknown_variable",
                f"Unknown variable {name!r}; the audience-wide variables are {known}.",
                path=f"variables.{name}",
            )
        if not isinstance(value, str) or len(value) > MAX_CONSTANT_LENGTH:
            raise ValidationFailed(
                "bad_variable_value",
                f"{{{{{name}}}}} must be text of at most {MAX_CONSTANT_LENGTH} characters.",
                path=f"variables.{name}",
            )
    values = {"product": product_name} if product_name is not None else {}
    values.update(given)
    for name in sorted(used(*texts) & set(CONSTANT_VARIABLES)):
        if name not in values:
            hint = " (attach a product to the template)" if name == "product" else ""
            raise ValidationFailed(
                "variable_missing",
                f"The template uses {{{{{name}}}}} but no value was given for it{hint}.",
                path=f"variables.{name}",
            )
    return values


def render_sql(text: str, constants: Mapping[str, str]) -> tuple[str, list[str]]:
    """SQL and parameters for ``text`` rendered per contact row: literal pieces and constants
    are parameters, contact variables their column expression."""
    parts: list[str] = []
    params: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append("%s")
            params.append(text[position : match.start()])
        name = match.group(1)
        if name in CONTACT_VARIABLES:
            parts.append(CONTACT_VARIABLES[name])
        else:
            parts.append("%s")
            params.append(constants[name])
        position = match.end()
    if position < len(text) or not parts:
        parts.append("%s")
        params.append(text[position:])
    # CAST keeps PostgreSQL from guessing the type of a lone parameter.
    return " || ".join(f"CAST({p} AS TEXT)" if p == "%s" else p for p in parts), params


def uses_store(*texts: str) -> bool:
    return "store" in used(*texts)


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` rendered in Python, for a preview; a variable without a value stays visible."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
