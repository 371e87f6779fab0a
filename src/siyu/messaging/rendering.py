"""Template variables: which exist, how a template is checked, and how it renders — in SQL for
a whole audience at once (nested REPLACE, which SQLite and PostgreSQL both have)."""

from __future__ import annotations

import re

from siyu.errors import ValidationFailed

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: variable -> SQL over contacts_contact ``c`` and commerce_store ``s`` (LEFT JOINed).
VARIABLES: dict[str, str] = {
    "nickname": "COALESCE(NULLIF(c.nickname, ''), c.name, '')",
    "name": "COALESCE(NULLIF(c.name, ''), c.nickname, '')",
    "city": "COALESCE(c.city, '')",
    "member_no": "COALESCE(c.member_no, '')",
    "store": "COALESCE(s.name, '')",
}


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


def render_sql(text_param: str, text: str) -> str:
    """SQL turning the parameter ``text_param`` (holding ``text``) into the rendered text; only
    the variables ``text`` uses are replaced."""
    sql = text_param
    for name in sorted(set(_PLACEHOLDER.findall(text))):
        sql = f"REPLACE({sql}, '{{{{{name}}}}}', {VARIABLES[name]})"
    return sql
