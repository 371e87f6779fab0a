"""The shape every batch write returns, whether it came from the API or an import file."""

from __future__ import annotations

from dataclasses import dataclass, field

from siyu.errors import ValidationFailed


@dataclass
class RowError:
    index: int
    path: str
    message: str


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def raise_if_errors(self, prefix: str = "") -> None:
        """The API refuses a batch with any bad item, naming each, so nothing is half-written."""
        if self.errors:
            first = self.errors[0]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            path = f"{prefix}{first.index}" + (f".{first.path}" if first.path else "")
            exc = ValidationFailed("invalid_batch", f"{path}: {first.message}{more}", path=path)
            exc.errors = [
                {"path": f"{prefix}{e.index}" + (f".{e.path}" if e.path else ""), "message": e.message} for e in self.errors
            ]
            raise exc


def duplicate_ids(ids: list[str]) -> dict[int, str]:
    """{index: reason} for every repeat of an id within one batch."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for i, value in enumerate(ids):
        if value in seen:
            out[i] = f"{value!r} appears more than once in this batch (first at item {seen[value]})"
        else:
            seen[value] = i
    return out
